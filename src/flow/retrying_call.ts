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
import { retry, retryFailed, tryFirst } from "../lib/retry.ts";
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
  run<T>(
    target: Target,
    fn: () => Promise<T>,
    ctx: MessageContext,
    graceOver: AbortSignal,
  ): Promise<T> {
    const call = target === "enrichment" || target === "s3" ? () => abortable(fn(), graceOver) : fn;
    if (graceOver.aborted) return Promise.reject(graceOver.reason);
    // The first try builds nothing for retries (lib/retry.ts, docs/architecture.md).
    return tryFirst(
      call,
      this.#services.clock,
      (error, start) => this.#afterFirst(target, call, ctx, graceOver, start, error),
    );
  }

  /** Retries after the first try failed; an open breaker is waited out with a fresh budget. */
  async #afterFirst<T>(
    target: Target,
    call: () => Promise<T>,
    ctx: MessageContext,
    graceOver: AbortSignal,
    start: number,
    error: unknown,
  ): Promise<T> {
    const budgetMs = this.#visibilityMs * 0.8 - (start - ctx.receivedAt);
    let pending = retryFailed(call, this.#options(target, ctx, graceOver, budgetMs), start, error);
    for (;;) {
      try {
        return await pending;
      } catch (failure) {
        if (graceOver.aborted || !(failure instanceof CircuitOpenError)) throw failure;
        // The breaker's wait, under the heartbeat; then a fresh budget.
        await this.#services.clock.sleep(Math.max(failure.remainingMs, 100), graceOver);
        pending = retry(call, this.#options(target, ctx, graceOver, this.#visibilityMs * 0.8));
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
