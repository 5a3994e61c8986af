/**
 * A message's span (docs/tracing.md): from its receive to its final outcome, continuing the
 * producer's context (`traceparent`, else `AWSTraceHeader`), with the attributes of the
 * OpenTelemetry messaging conventions. Its SQS settle requests are child spans. Attributes are
 * set only on a span that records, so a message that is not exported pays for none.
 */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import type { Outcome } from "../domain/outcome.ts";
import { incomingContext } from "../lib/trace_context.ts";
import { type SharedAttributes, SPAN_KIND, type Traced, type Tracer } from "../lib/tracer.ts";

/** Outcomes that are not a failure of the message's work. */
const FINE: ReadonlySet<Outcome> = new Set(["accepted", "duplicate", "dropped"]);

/** Each queue's attributes, and each settle action's: one object apiece for all their spans. */
const QUEUE_ATTRIBUTES = new Map<string, SharedAttributes>();
const SETTLE_ATTRIBUTES = new Map<string, SharedAttributes>();

/** The shared attributes under `key`, made on first use (a worker has one queue, 3 actions). */
function sharedOnce(
  map: Map<string, SharedAttributes>,
  key: string,
  make: () => SharedAttributes["attributes"],
): SharedAttributes {
  let shared = map.get(key);
  if (!shared) {
    shared = { attributes: make() };
    map.set(key, shared);
  }
  return shared;
}

function queueAttributes(name: string): SharedAttributes {
  return sharedOnce(QUEUE_ATTRIBUTES, name, () => ({
    "messaging.system": "aws_sqs",
    "messaging.operation.type": "process",
    "messaging.operation.name": "process",
    "messaging.destination.name": name,
  }));
}

function settleAttributes(action: string): SharedAttributes {
  return sharedOnce(SETTLE_ATTRIBUTES, action, () => ({
    "messaging.system": "aws_sqs",
    "messaging.operation.type": "settle",
    "messaging.operation.name": action,
  }));
}

/** The queue's name from its URL (the last path segment): `messaging.destination.name`. */
export function queueNameOf(queueUrl: string): string {
  const path = queueUrl.replace(/\/+$/, "");
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * The span of a message received at `receivedAt` (monotonic ms) from `queue`; its parent is the
 * incoming context (lib/trace_context.ts), the SNS envelope's last when `envelope` is given.
 */
export function beginMessageTrace(
  tracer: Tracer,
  sqs: SqsMessage,
  at: { receivedAt: number; queue: { name: string; spanName: string } },
  envelope?: SqsMessage["messageAttributes"],
): Traced {
  const { receivedAt, queue } = at;
  const parent = incomingContext(sqs.messageAttributes, sqs.attributes, envelope);
  const trace = tracer.begin(parent, queue.spanName, SPAN_KIND.consumer, receivedAt);
  if (trace.span) {
    trace.share(queueAttributes(queue.name));
    trace.set("messaging.message.id", sqs.messageId);
    const group = sqs.attributes.MessageGroupId;
    if (group !== undefined) trace.set("messaging.aws_sqs.message_group_id", group);
  }
  return trace;
}

/** The final outcome on the message's span (its end comes when the pipeline lets it go). */
export function traceOutcome(
  trace: Traced,
  fields: {
    outcome: Outcome;
    receiveCount: number;
    messageId: string | undefined;
    category: string | undefined;
    reason: string | undefined;
  },
): void {
  if (!trace.span) return;
  trace.set("sluice.outcome", fields.outcome);
  trace.set("sluice.receive_count", fields.receiveCount);
  if (fields.messageId !== undefined) trace.set("sluice.message_id", fields.messageId);
  if (fields.category !== undefined) trace.set("sluice.category", fields.category);
  if (!FINE.has(fields.outcome)) {
    trace.fail(`${fields.outcome}${fields.reason ? `: ${fields.reason}` : ""}`);
  }
}

/**
 * `work` (an SQS settle request) as a child span of the message's: its wait for a batch and
 * the request. Only called for a recording trace; the caller skips it otherwise. Chained, not
 * an async function: one frame fewer for every exported message.
 */
export function settleSpan<T>(trace: Traced, action: string, work: Promise<T>): Promise<T> {
  const span = trace.child(action, SPAN_KIND.client);
  span.share(settleAttributes(action));
  return work.then((value) => {
    span.end();
    return value;
  }, (error) => {
    span.fail(error instanceof Error ? error.message : String(error));
    span.end();
    throw error;
  });
}
