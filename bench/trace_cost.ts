/**
 * What tracing adds to one message, measured (README, Tracing): the tracing work of one
 * accepted message — its context read from a `traceparent` attribute, its span, the validator
 * request's child span and header, the delete's child span, the outcome — with sluice's own
 * tracer (export off; export on, spans encoded as OTLP protobuf and JSON and handed to a fetch
 * that answers at once), and the same work done with the OpenTelemetry JS SDK (TracerProvider,
 * BatchSpanProcessor, the W3C propagator, the OTLP protobuf serializer). The ratio is against
 * sluice's measured CPU per message on io_mild (bench/RESULTS.md).
 *
 *   deno run -A bench/trace_cost.ts [--messages 200000] [--base-ms 0.135]
 */
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { ExportResultCode, W3CTraceContextPropagator } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { OtlpExporter, type OtlpProtocol } from "../src/adapters/otlp_exporter.ts";
import { systemClock } from "../src/lib/clock.ts";
import { createSampler } from "../src/lib/trace_sampler.ts";
import { SPAN_KIND, Tracer } from "../src/lib/tracer.ts";
import { beginMessageTrace, traceOutcome } from "../src/flow/message_trace.ts";
import type { SqsMessage } from "../src/adapters/sqs_client.ts";

const args = Deno.args;
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const MESSAGES = flag("--messages", 200_000);
const BASE_MS = flag("--base-ms", 0.135);
const CHUNK = 1000;

function message(i: number): SqsMessage {
  return {
    messageId: `sqs-${i}`,
    receiptHandle: `rh-${i}`,
    body: "{}",
    attributes: { ApproximateReceiveCount: "1", SentTimestamp: "1735689600000" },
    messageAttributes: {
      traceparent: {
        DataType: "String",
        StringValue: `00-4bf92f3577b34da6a3ce929d0e0e${
          String(1000 + (i % 9000))
        }-00f067aa0ba902b7-01`,
      },
    },
  };
}

const okFetch: typeof fetch = () => Promise.resolve(new Response(null, { status: 200 }));
const QUEUE = { name: "bench", spanName: "process bench" };
let sink = 0;

/** sluice's tracer: one message's tracing work. */
function sluiceMessage(tracer: Tracer, sqs: SqsMessage): void {
  const t = beginMessageTrace(tracer, sqs, {
    receivedAt: systemClock.monotonic(),
    queue: QUEUE,
  });
  const call = t.child("POST validator", SPAN_KIND.client);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    traceparent: call.traceparent,
  };
  sink += headers.traceparent!.length;
  if (call.span) {
    call.set("http.request.method", "POST");
    call.set("url.full", "http://127.0.0.1:9/ingest");
    call.set("http.response.status_code", 200);
    call.end();
    const del = t.child("DeleteMessage", SPAN_KIND.client);
    del.set("messaging.system", "aws_sqs");
    del.set("messaging.operation.type", "settle");
    del.set("messaging.operation.name", "DeleteMessage");
    del.end();
    traceOutcome(t, {
      outcome: "accepted",
      receiveCount: 1,
      messageId: "m-1",
      category: undefined,
      reason: undefined,
    });
  }
  t.end();
}

async function runSluice(protocol: OtlpProtocol | undefined): Promise<number> {
  const exporter = protocol && new OtlpExporter({
    url: "http://127.0.0.1:9/v1/traces",
    protocol,
    headers: {},
    timeoutMs: 10_000,
    resource: { attributes: { "service.name": "sluice" }, scopeName: "sluice", scopeVersion: "0" },
    maxQueueSize: 2048,
    maxBatchSize: 512,
    scheduleDelayMs: 5000,
    fetch: okFetch,
    clock: systemClock,
    onDropped: () => {},
    onError: (error) => console.error(error),
  });
  const sampler = createSampler("parentbased_always_on");
  const tracer = new Tracer({ sampler, clock: systemClock, sink: exporter });
  const started = performance.now();
  for (let i = 0; i < MESSAGES; i += CHUNK) {
    for (let j = i; j < i + CHUNK; j++) sluiceMessage(tracer, message(j));
    // Let the batches go out, as they would between receives.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await exporter?.flush();
  exporter?.close();
  return performance.now() - started;
}

/** No tracing at all: what building the test message costs, subtracted from the others. */
async function runNothing(): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < MESSAGES; i += CHUNK) {
    for (let j = i; j < i + CHUNK; j++) sink += message(j).messageId.length;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return performance.now() - started;
}

/** The OpenTelemetry SDK doing the same, its OTLP protobuf serializer as the exporter's work. */
async function runOtelSdk(): Promise<number> {
  const exporter: SpanExporter = {
    export(spans: ReadableSpan[], done) {
      sink += ProtobufTraceSerializer.serializeRequest(spans)?.byteLength ?? 0;
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: () => Promise.resolve(),
  };
  const processor = new BatchSpanProcessor({
    exporter,
    maxQueueSize: 2048,
    maxExportBatchSize: 512,
    scheduledDelayMillis: 5000,
  });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": "sluice" }),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer("sluice");
  const w3c = new W3CTraceContextPropagator();
  const getter = {
    keys: (c: Record<string, { StringValue?: string }>) => Object.keys(c),
    get: (c: Record<string, { StringValue?: string }>, key: string) => c[key]?.StringValue,
  };
  const started = performance.now();
  for (let i = 0; i < MESSAGES; i += CHUNK) {
    for (let j = i; j < i + CHUNK; j++) {
      const sqs = message(j);
      const parent = w3c.extract(context.active(), sqs.messageAttributes, getter);
      const span = tracer.startSpan("process bench", {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "aws_sqs",
          "messaging.operation.type": "process",
          "messaging.operation.name": "process",
          "messaging.destination.name": "bench",
          "messaging.message.id": sqs.messageId,
        },
      }, parent);
      const inMessage = trace.setSpan(parent, span);
      const call = tracer.startSpan("POST validator", { kind: SpanKind.CLIENT }, inMessage);
      const headers: Record<string, string> = { "content-type": "application/json" };
      propagation.inject(trace.setSpan(inMessage, call), headers, {
        set: (carrier, key, value) => (carrier as Record<string, string>)[key] = value,
      });
      sink += headers.traceparent?.length ?? 0;
      call.setAttributes({
        "http.request.method": "POST",
        "url.full": "http://127.0.0.1:9/ingest",
        "http.response.status_code": 200,
      });
      call.end();
      const del = tracer.startSpan("DeleteMessage", { kind: SpanKind.CLIENT }, inMessage);
      del.setAttributes({
        "messaging.system": "aws_sqs",
        "messaging.operation.type": "settle",
        "messaging.operation.name": "DeleteMessage",
      });
      del.end();
      span.setAttributes({ "sluice.outcome": "accepted", "sluice.receive_count": 1 });
      span.end();
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await processor.forceFlush();
  await provider.shutdown();
  return performance.now() - started;
}

propagation.setGlobalPropagator(new W3CTraceContextPropagator());

const modes: Array<[string, () => Promise<number>]> = [
  ["no tracing", runNothing],
  ["sluice, export off", () => runSluice(undefined)],
  ["sluice, export on (http/protobuf)", () => runSluice("http/protobuf")],
  ["sluice, export on (http/json)", () => runSluice("http/json")],
  ["OpenTelemetry JS SDK, export on (protobuf)", runOtelSdk],
];
const results = new Map<string, number[]>();
// Rounds of every mode, the median kept: the machine is shared.
for (let round = 0; round < 4; round++) {
  for (const [name, run] of modes) {
    const ms = await run();
    if (round > 0) results.set(name, [...(results.get(name) ?? []), ms]);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const nothing = median(results.get("no tracing")!) / MESSAGES;
console.log(`${MESSAGES} messages, median of 3 rounds, against ${BASE_MS} ms CPU per message`);
console.log("| mode | µs per message added | × CPU per message |");
console.log("| --- | --- | --- |");
for (const [name] of modes.slice(1)) {
  const added = Math.max(0, median(results.get(name)!) / MESSAGES - nothing);
  const ratio = (BASE_MS + added) / BASE_MS;
  console.log(`| ${name} | ${(added * 1000).toFixed(2)} | ${ratio.toFixed(3)} |`);
}
if (sink < 0) console.log(sink);
