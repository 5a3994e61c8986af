/**
 * The end of a message: carries out the one action route() chose (delete, dead-letter,
 * release, re-queue, or nothing for a stale receipt), ends its heartbeat, and records the
 * outcome in the metrics and the log (docs/outcomes.md).
 */
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import {
  type Action,
  maxVisibilitySeconds,
  type Outcome,
  type ReleaseVisibility,
  releaseVisibilitySeconds,
} from "../domain/outcome.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { traceFields } from "../lib/tracer.ts";
import type { MessageContext } from "./message_context.ts";
import { settleSpan, traceOutcome } from "./message_trace.ts";
import type { Settler } from "./settle.ts";
import type { VisibilityHeartbeat } from "./visibility_heartbeat.ts";

export interface FinishPorts {
  settler: Pick<Settler, "delete" | "changeVisibility" | "deadLetter" | "requeue">;
  heartbeat: Pick<VisibilityHeartbeat, "untrack">;
}

export interface FinishServices {
  metrics: SluiceMetrics;
  logger: Logger;
  /** Wall clock for the message's age (SentTimestamp), monotonic for its time in the worker. */
  clock: Pick<Clock, "now" | "monotonic">;
  /** Told each final outcome and its receive→final ms (the periodic summary). */
  onOutcome?: ((outcome: Outcome, durationMs: number) => void) | undefined;
}

/** How long a re-queue at shutdown may keep retrying, ms. */
const REQUEUE_BUDGET_MS = 10_000;

export class Finisher {
  readonly #ports: FinishPorts;
  readonly #services: FinishServices;

  constructor(ports: FinishPorts, services: FinishServices) {
    this.#ports = ports;
    this.#services = services;
  }

  /**
   * Carries out `action` on SQS and records the outcome. The heartbeat keeps covering a
   * delete or a DLQ send that SQS slows down; a release or a re-queue stops it first, since
   * a later extension would undo it.
   */
  async carryOut(ctx: MessageContext, action: Exclude<Action, { kind: "hold" }>): Promise<void> {
    const { settler, heartbeat } = this.#ports;
    try {
      switch (action.kind) {
        case "delete": {
          const deleting = settler.delete(ctx.sqs.receiptHandle);
          await (ctx.trace.span ? settleSpan(ctx.trace, "DeleteMessage", deleting) : deleting);
          return this.#record(ctx, action.outcome, action.category, action.reason);
        }
        case "dead_letter":
          return await this.#deadLetter(ctx, action);
        case "release":
          await this.#release(ctx, action.visibility);
          return this.#record(ctx, "released", action.category, action.reason);
        case "defer":
          await this.#release(ctx, action.seconds);
          return this.#record(ctx, "deferred", "TRANSIENT", action.reason);
        case "requeue":
          return await this.#requeue(ctx, action.reason);
        case "let_go":
          // SQS has made it visible again (another worker may hold it): nothing to send.
          heartbeat.untrack(ctx.sqs);
          return this.#record(ctx, "released", "TRANSIENT", action.reason);
      }
    } finally {
      heartbeat.untrack(ctx.sqs);
    }
  }

  async #deadLetter(ctx: MessageContext, action: Extract<Action, { kind: "dead_letter" }>) {
    const sending = this.#ports.settler.deadLetter(ctx.sqs, action.category, action.reason);
    const sent = await (ctx.trace.span ? settleSpan(ctx.trace, "SendMessage", sending) : sending);
    if (sent !== false) return this.#record(ctx, "dead_lettered", action.category, action.reason);
    // SQS would not take the copy (too large): let the redrive policy move it.
    await this.#release(ctx, "longest");
    const reason = `${action.reason} (DLQ send refused; released)`;
    this.#record(ctx, "released", action.category, reason);
  }

  /** Back to the queue: a fresh copy, or where SQS will not take one, released at once. */
  async #requeue(ctx: MessageContext, reason: string): Promise<void> {
    this.#ports.heartbeat.untrack(ctx.sqs);
    try {
      const requeue = this.#ports.settler.requeue(ctx.sqs, REQUEUE_BUDGET_MS);
      await (ctx.trace.span ? settleSpan(ctx.trace, "SendMessage", requeue) : requeue);
      const group = ctx.sqs.attributes.MessageGroupId;
      if (group !== undefined) {
        this.#services.logger.warn(
          "re-queued a FIFO message as a fresh copy: its group's order may change",
          { message_group_id: group, message_id: ctx.messageId ?? null, ...traceFields(ctx.trace) },
        );
      }
      return this.#record(ctx, "released", "TRANSIENT", reason);
    } catch (error) {
      this.#services.logger.warn("could not re-queue a message at shutdown; releasing it", {
        error,
        message_id: ctx.messageId ?? null,
        ...traceFields(ctx.trace),
      });
    }
    try {
      await this.#release(ctx, "now");
      this.#record(ctx, "released", "TRANSIENT", "shutdown");
    } catch (error) {
      this.#services.logger.warn(
        "could not release a message; it reappears after its visibility timeout",
        { error, message_id: ctx.messageId ?? null, ...traceFields(ctx.trace) },
      );
    }
  }

  /** Out of sight for a backoff of that kind, or (a deferral) that many seconds within SQS's cap. */
  async #release(ctx: MessageContext, visibility: ReleaseVisibility | number): Promise<void> {
    this.#ports.heartbeat.untrack(ctx.sqs);
    const since = (this.#services.clock.monotonic() - ctx.receivedAt) / 1000;
    const seconds = typeof visibility === "number"
      ? Math.min(visibility, maxVisibilitySeconds(since))
      : releaseVisibilitySeconds(ctx.receiveCount, since, { visibility });
    const changing = this.#ports.settler.changeVisibility(ctx.sqs.receiptHandle, seconds);
    await (ctx.trace.span ? settleSpan(ctx.trace, "ChangeMessageVisibility", changing) : changing);
  }

  #record(ctx: MessageContext, outcome: Outcome, category?: string, reason?: string): void {
    const { metrics, logger, clock } = this.#services;
    const durationMs = clock.monotonic() - ctx.receivedAt;
    metrics.messages.inc({ outcome });
    metrics.messageDuration.observe(undefined, durationMs / 1000);
    const sent = Number(ctx.sqs.attributes.SentTimestamp);
    if (outcome !== "released" && outcome !== "deferred" && Number.isFinite(sent)) {
      metrics.messageAge.observe(undefined, Math.max(0, (clock.now() - sent) / 1000));
    }
    this.#services.onOutcome?.(outcome, durationMs);
    if (ctx.trace.span) {
      const { receiveCount, messageId } = ctx;
      traceOutcome(ctx.trace, { outcome, receiveCount, messageId, category, reason });
    }
    // At info the common outcomes are only counted (the summary line); a line each would
    // hit journald's rate limit within seconds. A message gone without acceptance is a warning.
    // A deferral is not an end, and a flooding key makes many: its key's start line says it.
    const level = outcome === "accepted" || outcome === "duplicate" || outcome === "deferred"
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
      trace_id: ctx.trace.traceId,
      span_id: ctx.trace.spanId,
      ...groupOf(ctx),
    });
  }
}

/** A FIFO message's group, for its log line. */
function groupOf(ctx: MessageContext): { message_group_id?: string } {
  const group = ctx.sqs.attributes.MessageGroupId;
  return group === undefined ? {} : { message_group_id: group };
}
