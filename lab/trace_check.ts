/**
 * `--trace`: a local OTLP/HTTP receiver for the worker's spans, half the valid messages sent with
 * a producer's `traceparent`, and the count of messages whose trace arrived whole: the message's
 * span with the request spans its outcome needs (a validator submission for an acceptance) and
 * the SQS settle that ended it, and for a producer-traced message, in the producer's trace.
 */
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "./otlp_receiver.ts";
import type { OutgoingMessage } from "./generator.ts";

export interface TraceSummary {
  /** message spans received (a redelivery has one per receive) */
  messageSpans: number;
  /** of those, with every child its outcome needs */
  whole: number;
  /** messages sent with a producer's traceparent */
  producerTraced: number;
  /** of those, a message span found in the producer's trace */
  inProducerTrace: number;
  /** enrichment batch spans, and the links they carry */
  batchSpans: number;
  batchLinks: number;
}

/** The producer's traceparent of the `index`th message: a trace id the lab can recognise. */
export function producerTraceparent(index: number): string {
  const trace = `1ab0${index.toString(16).padStart(28, "0")}`;
  return `00-${trace}-${(index + 1).toString(16).padStart(16, "0")}-01`;
}

/** Every other valid message gets a producer traceparent. */
export function traceProducers(outgoing: OutgoingMessage[]): number {
  let traced = 0;
  outgoing.forEach((m, i) => {
    if (m.messageId !== undefined && i % 2 === 0) {
      m.traceparent = producerTraceparent(i);
      traced++;
    }
  });
  return traced;
}

/** The receiver, and the env vars pointing the worker at it. */
export function startTraceReceiver(): { receiver: OtlpReceiver; env: Record<string, string> } {
  const receiver = startOtlpReceiver();
  return {
    receiver,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: "500" },
  };
}

const SETTLES = new Set(["DeleteMessage", "ChangeMessageVisibility", "SendMessage"]);

/** What arrived (pure over the spans received). */
export function traceSummary(
  spans: readonly ReceivedSpan[],
  outgoing: readonly OutgoingMessage[],
): TraceSummary {
  const children = new Map<string, Set<string>>();
  for (const s of spans) {
    if (!s.parentSpanId) continue;
    const names = children.get(s.parentSpanId) ?? new Set<string>();
    names.add(s.name);
    children.set(s.parentSpanId, names);
  }
  const messages = spans.filter((s) => s.kind === 5 && s.name.startsWith("process "));
  let whole = 0;
  for (const m of messages) {
    const names = children.get(m.spanId) ?? new Set<string>();
    const settled = [...names].some((n) => SETTLES.has(n));
    const submitted = m.attributes["sluice.outcome"] !== "accepted" || names.has("POST validator");
    if (settled && submitted) whole++;
  }
  const traces = new Set(messages.map((m) => m.traceId));
  const producer = outgoing.filter((m) => m.traceparent !== undefined);
  const batches = spans.filter((s) => s.name === "enrichment batch");
  return {
    messageSpans: messages.length,
    whole,
    producerTraced: producer.length,
    inProducerTrace: producer.filter((m) => traces.has(m.traceparent!.slice(3, 35))).length,
    batchSpans: batches.length,
    batchLinks: batches.reduce((n, b) => n + b.links.length, 0),
  };
}

/** One summary line's value. */
export function formatTraceSummary(t: TraceSummary): string {
  const share = (n: number, of: number) => of === 0 ? "0 %" : `${(100 * n / of).toFixed(1)} %`;
  return `${t.whole} / ${t.messageSpans} message spans whole (${
    share(t.whole, t.messageSpans)
  }); ` +
    `producer-traced ${t.inProducerTrace} / ${t.producerTraced} in their producer's trace; ` +
    `${t.batchSpans} batch spans with ${t.batchLinks} links`;
}
