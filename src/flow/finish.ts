/**
 * The end of a message: carries out what `route()` decided (delete, dead-letter, release
 * with backoff), hands messages back at shutdown (release, or re-queue on a last receive),
 * and records the outcome in the metrics and the log.
 */
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import {
  type Action,
  type Outcome,
  releaseVisibilitySeconds,
  route,
  shutdownAction,
  type Verdict,
} from "../domain/outcome.ts";
import type { Logger } from "../lib/logger.ts";
import { type MessageContext, type RedriveState, refreshRedrive } from "./message_context.ts";
import type { Settler } from "./settle.ts";
import type { VisibilityHeartbeat } from "./visibility_heartbeat.ts";

export interface FinishPorts {
  settler: Pick<Settler, "delete" | "changeVisibility" | "deadLetter" | "requeue" | "hasDlq">;
  heartbeat: Pick<VisibilityHeartbeat, "untrack">;
  redrive: () => RedriveState;
}

export interface FinishServices {
  metrics: SluiceMetrics;
  logger: Logger;
  /** Told each final outcome and its receive→final ms (the periodic summary). */
  onOutcome?: ((outcome: Outcome, durationMs: number) => void) | undefined;
  /** Wall clock, ms: message age (SentTimestamp). */
  now: () => number;
  /** Monotonic clock, ms: time since receive. */
  monotonic: () => number;
}

/** How long a re-queue at shutdown may keep retrying, ms. */
const REQUEUE_BUDGET_MS = 10_000;

export class Finisher {
  readonly #p: FinishPorts;
  readonly #v: FinishServices;

  constructor(ports: FinishPorts, services: FinishServices) {
    this.#p = ports;
    this.#v = services;
  }

  /** The verdict's action on SQS, then its outcome recorded. */
  async settle(ctx: MessageContext, verdict: Verdict, action = route(verdict, ctx)) {
    const { settler } = this.#p;
    const handle = ctx.sqs.receiptHandle;
    // The heartbeat keeps covering a delete or DLQ send that SQS slows down; release()
    // stops it first, since a later extension would undo the release.
    switch (action.kind) {
      case "delete":
        await settler.delete(handle);
        return this.record(ctx, action.outcome, action.category, action.reason);
      case "dead_letter": {
        const sent = await settler.deadLetter(ctx.sqs, action.category, action.reason);
        if (sent !== false) {
          return this.record(ctx, "dead_lettered", action.category, action.reason);
        }
        // SQS would not take the copy (too large): let the redrive policy move it.
        await this.release(ctx, true);
        const reason = `${action.reason} (DLQ send refused; released)`;
        return this.record(ctx, "released", action.category, reason);
      }
      case "release":
        await this.release(ctx, action.longest);
        return this.record(ctx, "released", action.category, action.reason);
      case "let_go":
        // SQS has made it visible again (another worker may hold it): nothing to send.
        this.#p.heartbeat.untrack(ctx.sqs);
        return this.record(ctx, "released", "TRANSIENT", action.reason);
      default:
        throw new Error(
          `Cannot settle a message: received the action ${
            (action as Action).kind
          } from route(), expected delete, dead_letter, release or let_go`,
        );
    }
  }

  /** Back to the queue with a visibility that grows with the receive count. */
  async release(ctx: MessageContext, longest: boolean): Promise<void> {
    this.#p.heartbeat.untrack(ctx.sqs);
    const since = (this.#v.monotonic() - ctx.receivedAt) / 1000;
    const seconds = releaseVisibilitySeconds(ctx.receiveCount, since, { longest });
    await this.#p.settler.changeVisibility(ctx.sqs.receiptHandle, seconds);
  }

  /**
   * Shutdown past the grace: released at once (visibility 0), or, when this receive
   * may be the last the redrive policy allows, re-queued as a fresh copy so SQS never
   * moves a valid message to the DLQ. A copy SQS would not take falls back to a release.
   */
  async handBack(ctx: MessageContext): Promise<void> {
    refreshRedrive(ctx, this.#p.redrive(), this.#p.settler.hasDlq);
    if (shutdownAction(ctx).kind === "requeue") {
      try {
        await this.#p.settler.requeue(ctx.sqs, REQUEUE_BUDGET_MS);
        return this.record(ctx, "released", "TRANSIENT", "shutdown: re-queued as a fresh copy");
      } catch (error) {
        this.#v.logger.warn("could not re-queue a message at shutdown; releasing it", {
          error,
          message_id: ctx.messageId,
        });
      }
    }
    await this.#releaseNow(ctx, 0, "shutdown");
  }

  /** A bug, not a verdict: back off and say so. */
  async afterError(ctx: MessageContext, error: unknown): Promise<void> {
    this.#v.logger.error("unexpected error; releasing the message", {
      error,
      message_id: ctx.messageId,
    });
    const since = (this.#v.monotonic() - ctx.receivedAt) / 1000;
    const reason = String((error as Error)?.message ?? error).slice(0, 200);
    await this.#releaseNow(ctx, releaseVisibilitySeconds(ctx.receiveCount, since), reason);
  }

  async #releaseNow(ctx: MessageContext, seconds: number, reason: string): Promise<void> {
    try {
      await this.#p.settler.changeVisibility(ctx.sqs.receiptHandle, seconds);
      this.record(ctx, "released", "TRANSIENT", reason);
    } catch (error) {
      this.#v.logger.warn(
        "could not release a message; it reappears after its visibility timeout",
        {
          error,
          message_id: ctx.messageId,
        },
      );
    }
  }

  record(ctx: MessageContext, outcome: Outcome, category?: string, reason?: string): void {
    const { metrics, logger } = this.#v;
    const durationMs = this.#v.monotonic() - ctx.receivedAt;
    metrics.messages.inc({ outcome });
    metrics.messageDuration.observe(undefined, durationMs / 1000);
    const sent = Number(ctx.sqs.attributes.SentTimestamp);
    if (outcome !== "released" && Number.isFinite(sent)) {
      metrics.messageAge.observe(undefined, Math.max(0, (this.#v.now() - sent) / 1000));
    }
    this.#v.onOutcome?.(outcome, durationMs);
    // At info the common outcomes are only counted (the summary line); a line each would
    // hit journald's rate limit within seconds. A message gone without acceptance is a warning.
    const level = outcome === "accepted" || outcome === "duplicate"
      ? "debug"
      : outcome === "released"
      ? "info"
      : "warn";
    if (!logger.enabled(level)) return;
    logger[level]("message", {
      message_id: ctx.messageId ?? null,
      user_id: ctx.userId ?? null,
      outcome,
      category: category ?? null,
      reason: reason ?? null,
      receive_count: ctx.receiveCount,
      duration_ms: Math.round(durationMs),
      sqs_message_id: ctx.sqs.messageId,
    });
  }
}
