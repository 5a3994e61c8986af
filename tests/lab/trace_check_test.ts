import assert from "node:assert/strict";
import type { ReceivedSpan } from "../../lab/otlp_receiver.ts";
import type { OutgoingMessage } from "../../lab/generator.ts";
import { producerTraceparent, traceProducers, traceSummary } from "../../lab/trace_check.ts";

function span(name: string, fields: Partial<ReceivedSpan> = {}): ReceivedSpan {
  return {
    traceId: "t".repeat(32),
    spanId: name,
    parentSpanId: "",
    traceState: "",
    name,
    kind: 3,
    startTimeUnixNano: "1",
    endTimeUnixNano: "2",
    attributes: {},
    links: [],
    status: { code: 0, message: "" },
    ...fields,
  };
}

Deno.test("lab trace check: a message's trace is whole with its settle, and its submission when accepted", () => {
  const traced = producerTraceparent(0).slice(3, 35);
  const spans = [
    span("m1", {
      name: "process q",
      kind: 5,
      attributes: { "sluice.outcome": "accepted" },
      traceId: traced,
    }),
    span("v1", { name: "POST validator", parentSpanId: "m1" }),
    span("d1", { name: "DeleteMessage", parentSpanId: "m1" }),
    // Accepted without its submission span: not whole.
    span("m2", { name: "process q", kind: 5, attributes: { "sluice.outcome": "accepted" } }),
    span("d2", { name: "DeleteMessage", parentSpanId: "m2" }),
    // Dead-lettered: its DLQ send is the settle, no submission needed.
    span("m3", { name: "process q", kind: 5, attributes: { "sluice.outcome": "dead_lettered" } }),
    span("s3", { name: "SendMessage", parentSpanId: "m3" }),
    span("b", { name: "enrichment batch", kind: 1, links: [{ traceId: traced, spanId: "m1" }] }),
  ];
  const outgoing: OutgoingMessage[] = [
    { body: "{}", messageId: "a", duplicate: false },
    { body: "{}", messageId: "b", duplicate: false },
    { body: "x", poisonKind: "invalid_json", duplicate: false },
  ];
  assert.equal(traceProducers(outgoing), 1, "every other valid message");
  assert.equal(outgoing[0]!.traceparent, producerTraceparent(0));
  assert.deepEqual(traceSummary(spans, outgoing), {
    messageSpans: 3,
    whole: 2,
    producerTraced: 1,
    inProducerTrace: 1,
    batchSpans: 1,
    batchLinks: 1,
  });
});
