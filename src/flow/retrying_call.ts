/**
 * A downstream call retried for one message: full-jitter backoff within a budget that
 * ends before the visibility the receive granted would (the heartbeat covers the overrun
 * of the request in flight). While the target's breaker is open the message waits under
 * the heartbeat for it to close instead of spending its budget and being released.
 */
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import { abortable } from "../lib/async.ts";
import type { Clock } from "../lib/clock.ts";
import { CircuitOpenError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { retryAfterFirst } from "../lib/retry.ts";
import type { MessageContext } from "./message_context.ts";

export type Target = "enrichment" | "validator" | "table" | "s3";

export interface RetryingCallServices {
  metrics: SluiceMetrics;
  logger: Logger;
  clock: Clock;
}

export class RetryingCall {
  readonly #visibilityMs: number;
  readonly #services: RetryingCallServices;

  constructor(visibilityTimeoutSeconds: number, services: RetryingCallServices) {
    this.#visibilityMs = visibilityTimeoutSeconds * 1000;
    this.#services = services;
  }

  /**
   * `fn` until it succeeds, its budget runs out, or `graceOver` aborts. Past the grace an
   * enrichment call or an S3 fetch in flight is abandoned so the message is handed back at once; a
   * submission or a table request is not: the validator may accept it, and handing the
   * message back meanwhile would let another worker submit it again. HTTP_TIMEOUT_MS bounds
   * that wait.
   */
  async run<T>(
    target: Target,
    fn: () => Promise<T>,
    ctx: MessageContext,
    graceOver: AbortSignal,
  ): Promise<T> {
    const call = target === "enrichment" || target === "s3" ? () => abortable(fn(), graceOver) : fn;
    const { clock } = this.#services;
    let waited = false;
    for (;;) {
      if (graceOver.aborted) throw graceOver.reason;
      // The first try builds nothing for retries (lib/retry.ts, docs/architecture.md).
      const options = (start: number) =>
        this.#options(
          target,
          ctx,
          graceOver,
          this.#visibilityMs * 0.8 - (waited ? 0 : start - ctx.receivedAt),
        );
      try {
        return await retryAfterFirst(call, clock, options);
      } catch (error) {
        if (graceOver.aborted || !(error instanceof CircuitOpenError)) throw error;
        // The breaker's wait, under the heartbeat; then a fresh budget.
        await clock.sleep(Math.max(error.remainingMs, 100), graceOver);
        waited = true;
      }
    }
  }

  #options(target: Target, ctx: MessageContext, graceOver: AbortSignal, budgetMs: number) {
    const { metrics, logger, clock } = this.#services;
    return {
      clock,
      maxAttempts: Number.POSITIVE_INFINITY,
      baseDelayMs: 100,
      maxDelayMs: 5000,
      budgetMs: Math.max(1000, budgetMs),
      signal: graceOver,
      onRetry: (error: unknown, attempt: number) => {
        metrics.retries.inc({ target });
        if (!logger.enabled("debug")) return;
        logger.debug("retrying", { target, attempt, error, message_id: ctx.messageId });
      },
    };
  }
}
