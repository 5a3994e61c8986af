/**
 * Retries with full-jitter exponential backoff, a total time budget and
 * `Retry-After` support, plus the small helpers it is built from.
 */
import { isRetriable as defaultIsRetriable } from "./errors.ts";
import { onAbort } from "./on_abort.ts";

/** Options for {@linkcode retry}. */
export interface RetryOptions {
  /** Attempts including the first. Default 5. */
  maxAttempts?: number;
  /** Backoff base: the cap for attempt n is `baseDelayMs * 2 ** (n - 1)`. Default 100 ms. */
  baseDelayMs?: number;
  /** Upper bound of the backoff cap (not of a server's `Retry-After`). Default 5000 ms. */
  maxDelayMs?: number;
  /**
   * Total time budget in ms from the start of the first attempt; no retry is
   * started whose delay would end past it. Default Infinity.
   */
  budgetMs?: number;
  /** Whether an error is worth another attempt. Default `isRetriable` from errors.ts. */
  isRetriable?: (err: unknown) => boolean;
  /** Called before each sleep with the failed attempt's error and number and the delay. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Stops retrying: rejects with `signal.reason` before an attempt or during a sleep. */
  signal?: AbortSignal;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
  /** Random number in [0, 1) for jitter. Default `Math.random`. */
  random?: () => number;
  /** Abortable sleep. Default {@linkcode sleep}. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * The caller made the first attempt itself (a hot path skips retry() for calls that succeed
   * at once) and it failed with `error`: retry() goes on from there, its backoff, budget,
   * count and onRetry as if it had made that attempt. `fn` is first called for attempt 2.
   */
  failedFirst?: { error: unknown } | undefined;
}

/**
 * Runs `fn(attempt)` (attempt starts at 1) until success, a non-retriable
 * error, `maxAttempts`, or the budget; then rethrows the last error. An
 * error's numeric `retryAfterMs` (see HttpError) is the floor of the delay;
 * if it would end past the budget, retry stops and rethrows.
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const {
    maxAttempts = 5,
    baseDelayMs = 100,
    maxDelayMs = 5000,
    budgetMs = Infinity,
    isRetriable = defaultIsRetriable,
    onRetry,
    signal,
    now = Date.now,
    random = Math.random,
    sleep: sleepFn = sleep,
    failedFirst,
  } = options;
  const start = now();
  for (let attempt = 1;; attempt++) {
    if (signal?.aborted) throw signal.reason;
    try {
      if (attempt === 1 && failedFirst) throw failedFirst.error;
      return await fn(attempt);
    } catch (err) {
      // An aborted caller wants to stop, not to wait for another attempt.
      if (attempt >= maxAttempts || signal?.aborted || !isRetriable(err)) throw err;
      let delayMs = backoffDelay(attempt, baseDelayMs, maxDelayMs, random);
      const retryAfterMs = retryAfterOf(err);
      if (retryAfterMs !== undefined) delayMs = Math.max(delayMs, retryAfterMs);
      if (now() - start + delayMs > budgetMs) throw err;
      onRetry?.(err, attempt, delayMs);
      await sleepFn(delayMs, signal);
    }
  }
}

function retryAfterOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null || !("retryAfterMs" in err)) return undefined;
  const value = err.retryAfterMs;
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/**
 * Converts a `Retry-After` header to ms: delta seconds, or an HTTP date
 * relative to `now` (default `Date.now()`). Undefined if absent or invalid;
 * negative values and past dates give 0.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Math.max(0, Math.round(Number(text) * 1000));
  // Only an HTTP date should reach Date.parse, which is lenient with other text.
  if (!/[a-z]/i.test(text)) return undefined;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Waits `ms`; rejects with `signal.reason` on abort and clears its timer. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      forget?.();
      resolve();
    }, ms);
    const forget = signal && onAbort(signal, () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

/**
 * Full-jitter delay for attempt n (1-based):
 * `random() * min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1))`.
 * `random` defaults to `Math.random`.
 */
export function backoffDelay(
  attempt: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number = Math.random,
): number {
  return random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
}
