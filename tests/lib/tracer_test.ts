import assert from "node:assert/strict";
import { createSampler } from "../../src/lib/trace_sampler.ts";
import { SPAN_KIND, type SpanData, Tracer } from "../../src/lib/tracer.ts";
import type { RemoteContext } from "../../src/lib/trace_context.ts";
import { FakeClock } from "../support/fake_clock.ts";

const PARENT: RemoteContext = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: "00f067aa0ba902b7",
  sampled: true,
  traceState: "vendor=x",
};

function counter() {
  let n = 0;
  return () => (++n % 1000) / 1000;
}

Deno.test("tracer: export off: a trace is ids and a header, no span; its children are itself", () => {
  const tracer = new Tracer({
    sampler: createSampler("always_on"),
    clock: new FakeClock({ random: counter() }),
  });
  const trace = tracer.begin(PARENT, "process q", SPAN_KIND.consumer);
  assert.equal(trace.span, undefined, "nothing recorded");
  assert.equal(trace.traceId, PARENT.traceId);
  assert.notEqual(trace.spanId, PARENT.spanId);
  assert.equal(trace.traceparent, `00-${PARENT.traceId}-${trace.spanId}-01`);
  assert.equal(trace.child("POST validator", SPAN_KIND.client), trace, "no object per request");
  trace.set("a", 1);
  trace.end();
  assert.equal(tracer.exporting, false);
});

Deno.test("tracer: export on but not sampled: nothing recorded, the flag says so downstream", () => {
  const added: SpanData[] = [];
  const tracer = new Tracer({
    sampler: createSampler("parentbased_always_on"),
    clock: new FakeClock({ random: counter() }),
    sink: { add: (span) => added.push(span) },
  });
  const trace = tracer.begin({ ...PARENT, sampled: false }, "process q", SPAN_KIND.consumer);
  assert.equal(trace.span, undefined);
  assert.match(trace.traceparent, /-00$/);
  assert.equal(trace.child("x", SPAN_KIND.client), trace);
  trace.end();
  assert.equal(added.length, 0);
});

Deno.test("tracer: export on and sampled: the span and its children reach the sink once, timed on the monotonic clock", () => {
  const added: SpanData[] = [];
  const clock = new FakeClock({ start: 1_000, random: counter() });
  const tracer = new Tracer({
    sampler: createSampler("parentbased_always_on"),
    clock,
    sink: { add: (span) => added.push(span) },
  });
  const wallAtStart = clock.now();
  const trace = tracer.begin(PARENT, "process q", SPAN_KIND.consumer, clock.monotonic() - 5);
  trace.set("messaging.system", "aws_sqs");
  clock.advance(10);
  const call = trace.child("POST validator", SPAN_KIND.client);
  assert.notEqual(call, trace);
  assert.equal(call.traceparent, `00-${PARENT.traceId}-${call.spanId}-01`);
  clock.advance(20);
  call.fail("validator answered 503");
  call.end();
  call.end();
  trace.end();
  assert.equal(added.length, 2, "each span once");
  const [child, message] = added;
  assert.equal(message!.parentSpanId, PARENT.spanId);
  assert.equal(message!.traceState, "vendor=x");
  assert.equal(message!.startMs, wallAtStart - 5);
  assert.equal(message!.endMs, wallAtStart + 30);
  assert.deepEqual(message!.attributes, { "messaging.system": "aws_sqs" });
  assert.equal(child!.parentSpanId, message!.spanId);
  assert.equal(child!.error, "validator answered 503");
  assert.equal(child!.endMs - child!.startMs, 20);
});

Deno.test("tracer: a batch is the root of its own trace, linked to each message it serves", () => {
  const added: SpanData[] = [];
  const tracer = new Tracer({
    sampler: createSampler("always_on"),
    clock: new FakeClock({ random: counter() }),
    sink: { add: (span) => added.push(span) },
  });
  const a = tracer.begin(PARENT, "process q", SPAN_KIND.consumer);
  const b = tracer.begin(undefined, "process q", SPAN_KIND.consumer);
  const batch = tracer.linked("enrichment batch", SPAN_KIND.internal, [a, b]);
  assert.notEqual(batch.traceId, a.traceId);
  assert.notEqual(batch.traceId, b.traceId);
  assert.deepEqual(batch.span?.links, [
    { traceId: a.traceId, spanId: a.spanId },
    { traceId: b.traceId, spanId: b.spanId },
  ]);
  assert.equal(batch.span?.parentSpanId, undefined);
});
