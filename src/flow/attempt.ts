/**
 * One attempt at a message's work: its profile (with retries), the unknown-user policy
 * (route() decides), the output document, the submission (with retries). Returns what it
 * found out as a Verdict; `route()` decides what that means on SQS.
 */
import type { Submission } from "../adapters/validator_client.ts";
import type { InputMessage } from "../domain/message_schema.ts";
import { route, type Verdict } from "../domain/outcome.ts";
import {
  buildOutputDocument,
  type Enrichment,
  outputDocumentJson,
} from "../domain/output_document.ts";
import { categoryOf, HttpError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import type { IdempotencyLock } from "./idempotency_gate.ts";
import type { MessageContext } from "./message_context.ts";
import type { RetryingCall, Target } from "./retrying_call.ts";

export interface AttemptPorts {
  /** The enrichment for a user id (ProfileSource.lookup); throws transient errors. */
  lookup: (userId: string) => Promise<Enrichment>;
  /** A fresh cached enrichment, synchronously (ProfileSource.cached); undefined: ask `lookup`. */
  cached?: (userId: string) => Enrichment | undefined;
  /**
   * Submits an output document (its JSON text) to the validator behind its breaker and
   * limit. `signal` aborts when the shutdown grace ends: a submission still queued for a
   * slot must then not start.
   */
  submit: (document: string, signal: AbortSignal) => Promise<Submission>;
}

/** What an attempt found: a verdict, or that the shared lock is not certainly ours any more. */
export type AttemptResult = Verdict | { kind: "lock_lost" };

/** What decides, just before a submission, that this worker may still make it. */
export interface Ownership {
  /** SQS called the receipt stale (VisibilityHeartbeat.isStale). */
  isStale(message: MessageContext["sqs"]): boolean;
  /** The shared lock lasts long enough for the submission (IdempotencyGate.maySubmit). */
  maySubmit?: ((lock: IdempotencyLock) => boolean) | undefined;
}

export class Attempt {
  readonly #p: AttemptPorts;
  readonly #calls: RetryingCall;
  readonly #logger: Logger;
  readonly #ownership: Ownership;

  constructor(ports: AttemptPorts, calls: RetryingCall, logger: Logger, ownership: Ownership) {
    this.#p = ports;
    this.#calls = calls;
    this.#logger = logger;
    this.#ownership = ownership;
  }

  /** Throws only when `work` aborted (the end of the grace): the message is handed back. */
  async run(
    message: InputMessage,
    ctx: MessageContext,
    work: AbortSignal,
  ): Promise<AttemptResult> {
    let enrichment = this.#p.cached?.(message.user_id);
    if (enrichment === undefined) {
      try {
        const lookup = () => this.#p.lookup(message.user_id);
        enrichment = await this.#calls.run("enrichment", lookup, ctx, work);
      } catch (error) {
        if (work.aborted) throw error;
        return gaveUp("enrichment", error);
      }
    }
    if (
      enrichment.status === "unknown_user" && route({ kind: "unknown_user" }, ctx).kind !== "submit"
    ) {
      return { kind: "unknown_user" };
    }
    if (this.#logger.enabled("debug")) {
      const document = buildOutputDocument(message, enrichment);
      this.#logger.debug("outgoing document", { message_id: message.message_id, document });
    }
    const document = outputDocumentJson(message, enrichment);
    // A message received again elsewhere, or whose shared lock may lapse before the
    // validator answers, is not submitted from here (docs/failure-handling.md).
    if (this.#ownership.isStale(ctx.sqs)) return { kind: "stale" };
    if (ctx.lock && !this.#ownership.maySubmit?.(ctx.lock)) return { kind: "lock_lost" };
    let submission: Submission;
    try {
      // The first try is made here, not through RetryingCall.run: one async frame and one
      // closure fewer for the ~all messages whose submission lands at once.
      if (work.aborted) throw work.reason;
      submission = await this.#p.submit(document, work);
    } catch (first) {
      if (work.aborted) throw first;
      try {
        const submit = () => this.#p.submit(document, work);
        submission = await this.#calls.afterFailure("validator", submit, first, ctx, work);
      } catch (error) {
        if (work.aborted) throw error;
        return gaveUp("validator", error);
      }
    }
    if (submission.accepted) return { kind: "accepted" };
    return { kind: "rejected", reason: `HTTP ${submission.status}: ${submission.reason}` };
  }
}

export function gaveUp(target: Target, error: unknown): Verdict {
  return {
    kind: "gave_up",
    target,
    category: categoryOf(error),
    reason: error instanceof Error ? error.message.slice(0, 200) : String(error),
    validator5xx: target === "validator" && error instanceof HttpError && error.status >= 500,
  };
}
