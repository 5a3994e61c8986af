/**
 * A downstream call retried for one message: full-jitter backoff within a budget that
 * ends before the visibility the receive granted would (the heartbeat covers the overrun
 * of the request in flight). While the target's breaker is open the message waits under
 * the heartbeat for it to close instead of spending its budget and being released.
 */
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import { CircuitOpenError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { onAbort } from "../lib/on_abort.ts";
import { retry } from "../lib/retry.ts";
import type { MessageContext } from "./message_context.ts";

export type Target = "enrichment" | "validator" | "table";

export interface RetryingCallServices {
  metrics: SluiceMetrics;
  logger: Logger;
  /** Monotonic clock, ms. */
  monotonic: () => number;
  random: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export class RetryingCall {
  readonly #visibilityMs: number;
  readonly #v: RetryingCallServices;

  constructor(visibilityTimeoutSeconds: number, services: RetryingCallServices) {
    this.#visibilityMs = visibilityTimeoutSeconds * 1000;
    this.#v = services;
  }

  /**
   * `fn` until it succeeds, its budget runs out, or `work` aborts (the end of the grace).
   * Past the grace an enrichment call in flight is abandoned so the message is released at
   * once; a submission is not: the validator may accept it, and releasing it meanwhile would
   * let another worker submit it again. HTTP_TIMEOUT_MS bounds that wait.
   */
  async run<T>(
    target: Target,
    fn: () => Promise<T>,
    ctx: MessageContext,
    work: AbortSignal,
  ): Promise<T> {
    const call = target === "enrichment" ? () => abortable(fn(), work) : fn;
    if (work.aborted) throw work.reason;
    try {
      // Almost every call succeeds at once: no retry machinery for it (a per-message cost).
      return await call();
    } catch (error) {
      if (work.aborted) throw error;
      return await this.afterFailure(target, call, error, ctx, work);
    }
  }

  /**
   * The rest of run() once a first attempt (made by the caller: the hot path skips run()'s
   * own frame) failed with `error`: retry() goes on from that failure (its backoff, budget,
   * count and log as if it had made that attempt).
   */
  async afterFailure<T>(
    target: Target,
    call: () => Promise<T>,
    error: unknown,
    ctx: MessageContext,
    work: AbortSignal,
  ): Promise<T> {
    const { metrics, logger, monotonic, random, sleep } = this.#v;
    let budgetMs = Math.max(1000, this.#visibilityMs * 0.8 - (monotonic() - ctx.receivedAt));
    let failedFirst: { error: unknown } | undefined = { error };
    for (;;) {
      try {
        return await retry(call, {
          failedFirst,
          maxAttempts: Number.POSITIVE_INFINITY,
          baseDelayMs: 100,
          maxDelayMs: 5000,
          budgetMs,
          signal: work,
          now: monotonic,
          random,
          sleep,
          onRetry: (error, attempt) => {
            metrics.retries.inc({ target });
            if (!logger.enabled("debug")) return;
            logger.debug("retrying", { target, attempt, error, message_id: ctx.messageId });
          },
        });
      } catch (error) {
        if (work.aborted || !(error instanceof CircuitOpenError)) throw error;
        failedFirst = undefined; // the breaker's wait over, retry() makes every attempt itself
        await sleep(Math.max(error.remainingMs, 100), work);
        budgetMs = Math.max(1000, this.#visibilityMs * 0.8);
      }
    }
  }
}

/** Waits for `promise`, or rejects with the signal's reason when it aborts first. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {}); // abandoned: its failure must not go unhandled
    return Promise.reject(signal.reason);
  }
  return new Promise((resolve, reject) => {
    const forget = onAbort(signal, () => reject(signal.reason));
    promise.then(resolve, reject).finally(forget);
  });
}
