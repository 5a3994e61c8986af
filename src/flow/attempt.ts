/**
 * One attempt at a message's work: its profile (with retries), the unknown-user policy, the
 * output document, the submission (with retries). Returns what it found out as a Verdict;
 * route() decides what that means on SQS.
 */
import type { Submission } from "../adapters/validator_client.ts";
import type { InputMessage } from "../domain/message_schema.ts";
import type { UnknownUserPolicy, Verdict } from "../domain/outcome.ts";
import {
  buildOutputDocument,
  type Enrichment,
  outputDocumentJson,
} from "../domain/output_document.ts";
import { categoryOf, HttpError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { type Traced, traceFields } from "../lib/tracer.ts";
import type { IdempotencyLock } from "./idempotency_gate.ts";
import type { MessageContext } from "./message_context.ts";
import type { Admission, RateTicket } from "./rate_limiter.ts";
import type { RetryingCall, Target } from "./retrying_call.ts";

export interface AttemptPorts {
  /** The enrichment for a user id (ProfileSource.lookup), for the message `trace` follows. */
  lookup: (userId: string, trace: Traced) => Promise<Enrichment>;
  /** A fresh cached enrichment, synchronously (ProfileSource.cached); undefined: ask `lookup`. */
  cached: (userId: string) => Enrichment | undefined;
  /**
   * Submits an output document (its JSON text) to the validator behind its breaker and
   * limit. `graceOver` aborts when the shutdown grace ends: a submission still queued for a
   * slot must then not start.
   */
  submit: (document: string, graceOver: AbortSignal, trace: Traced) => Promise<Submission>;
  /** SQS called the receipt stale (VisibilityHeartbeat.isStale). */
  isStale: (sqs: MessageContext["sqs"]) => boolean;
  /**
   * RATE_LIMIT: the message's slot in its key's window, after a short wait here, or the
   * deferral to route (rate_limiter.ts); undefined: its key is not limited. Unset: no call.
   */
  rate?:
    | ((message: InputMessage, ctx: MessageContext, graceOver: AbortSignal) => Promise<
      Admission | undefined
    >)
    | undefined;
  /** The shared lock lasts long enough for the submission (IdempotencyGate.maySubmit). */
  maySubmit?: ((lock: IdempotencyLock) => boolean) | undefined;
}

/** What an attempt found: a verdict, or that the shared lock is not certainly ours any more. */
export type AttemptResult = Verdict | { kind: "lock_lost" };

export class Attempt {
  readonly #ports: AttemptPorts;
  readonly #calls: RetryingCall;
  readonly #logger: Logger;
  readonly #unknownUsers: UnknownUserPolicy;

  constructor(
    ports: AttemptPorts,
    calls: RetryingCall,
    logger: Logger,
    unknownUserPolicy: UnknownUserPolicy,
  ) {
    this.#ports = ports;
    this.#calls = calls;
    this.#logger = logger;
    this.#unknownUsers = unknownUserPolicy;
  }

  /** Throws only when `graceOver` aborted: the message is then handed back. */
  async run(
    message: InputMessage,
    ctx: MessageContext,
    graceOver: AbortSignal,
    lock: IdempotencyLock | undefined,
  ): Promise<AttemptResult> {
    const ports = this.#ports;
    let enrichment = ports.cached(message.user_id);
    if (enrichment === undefined) {
      try {
        const lookup = () => ports.lookup(message.user_id, ctx.trace);
        enrichment = await this.#calls.run("enrichment", lookup, ctx, graceOver);
      } catch (error) {
        if (graceOver.aborted) throw error;
        return gaveUp("enrichment", error);
      }
    }
    if (enrichment.status === "unknown_user" && this.#unknownUsers !== "submit") {
      return { kind: "unknown_user" };
    }
    if (this.#logger.enabled("debug")) {
      const document = buildOutputDocument(message, enrichment);
      this.#logger.debug("outgoing document", {
        message_id: message.message_id,
        document,
        ...traceFields(ctx.trace),
      });
    }
    const document = outputDocumentJson(message, enrichment);
    let ticket: RateTicket | undefined;
    if (ports.rate) {
      const admission = await ports.rate(message, ctx, graceOver);
      if (admission?.kind === "deferred") return admission;
      ticket = admission;
    }
    try {
      // A message received again elsewhere, or whose shared lock may lapse before the
      // validator answers, is not submitted from here (docs/failure-handling.md).
      if (ports.isStale(ctx.sqs)) return { kind: "stale" };
      if (lock && !ports.maySubmit?.(lock)) return { kind: "lock_lost" };
      let submission: Submission;
      try {
        // Under RATE_LIMIT each try within its key's window.
        const submit = ticket
          ? () => limitedTry(ticket, () => ports.submit(document, graceOver, ctx.trace), graceOver)
          : () => ports.submit(document, graceOver, ctx.trace);
        submission = await this.#calls.run("validator", submit, ctx, graceOver);
      } catch (error) {
        if (graceOver.aborted) throw error;
        return gaveUp("validator", error);
      }
      if (submission.accepted) return { kind: "accepted" };
      return { kind: "rejected", reason: `HTTP ${submission.status}: ${submission.reason}` };
    } finally {
      ticket?.release();
    }
  }
}

/**
 * One try within its key's window: the slot taken (a retry waits for one), held until the
 * answer, so the window counts each try from no earlier than the validator saw it.
 */
async function limitedTry<T>(
  ticket: RateTicket,
  call: () => Promise<T>,
  graceOver: AbortSignal,
): Promise<T> {
  await ticket.next(graceOver);
  try {
    return await call();
  } finally {
    ticket.done();
  }
}

/** A call whose retries ran out (or whose error cannot be retried), as a verdict. */
export function gaveUp(target: Target, error: unknown): Verdict {
  return {
    kind: "gave_up",
    target,
    category: categoryOf(error),
    reason: error instanceof Error ? error.message.slice(0, 200) : String(error),
    validator5xx: target === "validator" && error instanceof HttpError && error.status >= 500,
  };
}
