/**
 * Time and chance, as one service: every part that reads the time, waits, sets a timer or
 * draws a random number takes a Clock, so tests run the same code on one fake clock
 * (tests/support/fake_clock.ts) and nothing below the composition root reads the system's.
 */
import { onAbort } from "./on_abort.ts";

export interface Clock {
  /** Wall-clock time, epoch ms: timestamps, message age, HTTP dates, record expiries. */
  now(): number;
  /**
   * Monotonic ms, for durations, budgets and deadlines: a wall-clock step (NTP) moves
   * neither a hold's end nor a retry budget.
   */
  monotonic(): number;
  /** Resolves after `ms`; rejects with `signal.reason` when it aborts first (timer cleared). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` after `ms` unless the returned function is called first. */
  timer(ms: number, fn: () => void): () => void;
  /** A number in [0, 1): jitter, ids. */
  random(): number;
}

/**
 * The system's sleep: resolves after `ms`; rejects with `signal.reason` when it aborts
 * first, its timer cleared. The lab and tools outside the worker use it directly.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const id = setTimeout(() => {
      forget?.();
      resolve();
    }, ms);
    // Hundreds of sleepers share the shutdown signal: one listener serves them (on_abort.ts).
    const forget = signal && onAbort(signal, () => {
      clearTimeout(id);
      reject(signal.reason);
    });
  });
}

/** The system's clock: the one place that reads it. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep,
  timer(ms, fn) {
    const id = setTimeout(fn, ms);
    return () => clearTimeout(id);
  },
  random: () => Math.random(),
};
