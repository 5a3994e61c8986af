/**
 * What the flow knows about one message while it works on it: the SQS message, when it
 * was received (monotonic ms), the ids that parsed, and the RouteContext `route()` reads.
 */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import type { RouteContext, UnknownUserPolicy } from "../domain/outcome.ts";
import type { IdempotencyLock } from "./idempotency_gate.ts";

export interface MessageContext extends RouteContext {
  sqs: SqsMessage;
  /** Monotonic ms at receive. */
  receivedAt: number;
  messageId?: string;
  userId?: string;
  /** The shared idempotency lock (IDEMPOTENCY_TABLE), while this copy holds it. */
  lock?: IdempotencyLock | undefined;
}

/** The RedrivePolicy as known now. */
export interface RedriveState {
  known: boolean;
  maxReceiveCount: number | undefined;
}

/** The policy parts of a RouteContext: what the flags and the environment say. */
export interface RoutePolicy {
  deleteOn4xx: boolean;
  deleteOn5xx: boolean;
  unknownUserPolicy: UnknownUserPolicy;
}

export function newContext(
  sqs: SqsMessage,
  receivedAt: number,
  policy: RoutePolicy,
): MessageContext {
  return {
    sqs,
    receivedAt,
    receiveCount: Math.max(1, Number(sqs.attributes.ApproximateReceiveCount ?? "1") || 1),
    redriveKnown: false,
    maxReceiveCount: undefined,
    hasDlq: false,
    deleteOn4xx: policy.deleteOn4xx,
    deleteOn5xx: policy.deleteOn5xx,
    unknownUserPolicy: policy.unknownUserPolicy,
  };
}

/** Refreshes the redrive fields of a context: the policy is read (and retried) in the background. */
export function refreshRedrive(ctx: RouteContext, redrive: RedriveState, hasDlq: boolean): void {
  ctx.redriveKnown = redrive.known;
  ctx.maxReceiveCount = redrive.maxReceiveCount;
  ctx.hasDlq = hasDlq;
}
