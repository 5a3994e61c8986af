/**
 * What the flow knows of one message, fixed at its receive: the SQS message, when it was
 * received (monotonic ms), its receive count and the ids that parsed. The parts of a
 * decision that change while it is worked on (the RedrivePolicy, a hold's timing) are read
 * when route() is asked, never stored here.
 */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import type { MessageAttributes, S3Pointer } from "../domain/envelope.ts";
import type { RouteContext, UnknownUserPolicy } from "../domain/outcome.ts";
import type { Traced } from "../lib/tracer.ts";

export interface MessageContext {
  readonly sqs: SqsMessage;
  /** Monotonic ms at receive. */
  readonly receivedAt: number;
  /** ApproximateReceiveCount, at least 1. */
  readonly receiveCount: number;
  readonly messageId: string | undefined;
  readonly userId: string | undefined;
  /**
   * The message attributes that count (trace context, rate-limit key): the SQS message's, with
   * an SNS envelope's beneath them (docs/payloads.md).
   */
  readonly attributes: MessageAttributes;
  /** The S3 object the body came from, if it came from one. */
  readonly pointer: S3Pointer | undefined;
  /** Its span (message_trace.ts): the context every request made for it carries. */
  readonly trace: Traced;
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
  ids: { messageId?: string | undefined; userId?: string | undefined },
  trace: Traced,
  unwrapped?: { attributes: MessageAttributes; pointer?: S3Pointer | undefined },
): MessageContext {
  return {
    sqs,
    receivedAt,
    receiveCount: Math.max(1, Number(sqs.attributes.ApproximateReceiveCount ?? "1") || 1),
    messageId: ids.messageId,
    userId: ids.userId,
    attributes: unwrapped ? unwrapped.attributes : sqs.messageAttributes,
    pointer: unwrapped?.pointer,
    trace,
  };
}

/** What route() reads for one decision: the message, the policy, the queue as known now. */
export function routeContext(
  ctx: MessageContext,
  policy: RoutePolicy,
  redrive: RedriveState,
  hasDlq: boolean,
  hold: RouteContext["hold"],
): RouteContext {
  return {
    receiveCount: ctx.receiveCount,
    redriveKnown: redrive.known,
    maxReceiveCount: redrive.maxReceiveCount,
    hasDlq,
    deleteOn4xx: policy.deleteOn4xx,
    deleteOn5xx: policy.deleteOn5xx,
    unknownUserPolicy: policy.unknownUserPolicy,
    ...(hold ? { hold } : {}),
  };
}
