/**
 * Retries with full-jitter exponential backoff, a total time budget and
 * `Retry-After` support, plus the small helpers it is built from.
 */
import { isRetriable as defaultIsRetriable } from "./errors.ts";
import type { Clock } from "./clock.ts";

/** Options for {@linkcode retry}. */
export interface RetryOptions {
  /** Time for the budget, the backoff's sleeps and its jitter. */
  clock: Clock;
  /** Attempts including the first. Default 5. */
  maxAttempts?: number;
  /** Backoff base: the cap for attempt n is `baseDelayMs * 2 ** (n - 1)`. Default 100 ms. */
  baseDelayMs?: number;
  /** Upper bound of the backoff cap (not of a server's `Retry-After`). Default 5000 ms. */
  maxDelayMs?: number;
  /**
   * Total time budget in ms from the start of the first attempt (the clock's monotonic
   * time); no retry is started whose delay would end past it. Default Infinity.
   */
  budgetMs?: number;
  /** Whether an error is worth another attempt. Default `isRetriable` from errors.ts. */
  isRetriable?: (err: unknown) => boolean;
  /** Called before each sleep with the failed attempt's error and number and the delay. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Stops retrying: rejects with `signal.reason` before an attempt or during a sleep. */
  signal?: AbortSignal | undefined;
}

/**
 * Runs `fn(attempt)` (attempt starts at 1) until success, a non-retriable
 * error, `maxAttempts`, or the budget; then rethrows the last error. An
 * error's numeric `retryAfterMs` (see HttpError) is the floor of the delay;
 * if it would end past the budget, retry stops and rethrows.
 */
export function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  if (options.signal?.aborted) return Promise.reject(options.signal.reason);
  return tryFirst(fn, options.clock, (error, start) => retryFailed(fn, options, start, error));
}

/**
 * The fast path, the one place it is written: almost every call succeeds at once, and then
 * costs one try and nothing more. Only when attempt 1 fails is `failed` called, with its error
 * and its start on the monotonic clock; what it returns is the result (`retryFailed`, or a
 * caller's own handling around it).
 */
export async function tryFirst<T>(
  fn: (attempt: number) => Promise<T>,
  clock: Pick<Clock, "monotonic">,
  failed: (error: unknown, start: number) => Promise<T>,
): Promise<T> {
  const start = clock.monotonic();
  try {
    return await fn(1);
  } catch (error) {
    return await failed(error, start);
  }
}

/** The general path: attempt 1, started at `start` (monotonic), failed with `first`. */
export async function retryFailed<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions,
  start: number,
  first: unknown,
): Promise<T> {
  const {
    clock,
    maxAttempts = 5,
    baseDelayMs = 100,
    maxDelayMs = 5000,
    budgetMs = Infinity,
    isRetriable = defaultIsRetriable,
    onRetry,
    signal,
  } = options;
  let err = first;
  for (let attempt = 1;; attempt++) {
    // An aborted caller wants to stop, not to wait for another attempt.
    if (attempt >= maxAttempts || signal?.aborted || !isRetriable(err)) throw err;
    let delayMs = backoffDelay(attempt, baseDelayMs, maxDelayMs, () => clock.random());
    const retryAfterMs = retryAfterOf(err);
    if (retryAfterMs !== undefined) delayMs = Math.max(delayMs, retryAfterMs);
    if (clock.monotonic() - start + delayMs > budgetMs) throw err;
    onRetry?.(err, attempt, delayMs);
    await clock.sleep(delayMs, signal);
    if (signal?.aborted) throw signal.reason;
    try {
      return await fn(attempt + 1);
    } catch (next) {
      err = next;
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
 * relative to `now` (epoch ms). Undefined if absent or invalid; negative values
 * and past dates give 0.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number,
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

/**
 * Full-jitter delay for attempt n (1-based):
 * `random() * min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1))`.
 */
export function backoffDelay(
  attempt: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number,
): number {
  return random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
}
