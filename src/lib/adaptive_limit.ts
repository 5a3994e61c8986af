/**
 * An AIMD concurrency limit (additive increase, multiplicative decrease, as in
 * TCP congestion control) and a Semaphore whose limit follows it.
 */
import type { Clock } from "./clock.ts";
import { HttpError, SqsError, TimeoutError } from "./errors.ts";
import { Semaphore } from "./semaphore.ts";

/** Options for {@linkcode AdaptiveLimit}. */
export interface AdaptiveLimitOptions {
  /** Hard cap. Default 64. */
  max?: number;
  /** Floor, >= 1. Default 1. */
  min?: number;
  /** Starting limit, clamped to [min, max]. Default min(max, 8). */
  initial?: number;
  /** Multiplicative decrease factor on overload, in (0, 1). Default 0.7. */
  backoffRatio?: number;
  /**
   * Latency above this multiple of the best recently seen latency counts as
   * congestion: such a success does not grow the limit. Default 2.5.
   */
  latencyTolerance?: number;
  /**
   * Latency within this many ms of the best is never congestion, whatever the
   * ratio: on loopback or a sub-millisecond downstream the best is ~0 and any
   * scheduling jitter would otherwise stop the limit from ever growing. Default 100.
   */
  latencySlackMs?: number;
  /** Called with the new limit whenever it changes. */
  onChange?: (limit: number) => void;
}

/** Samples per latency window; the best latency is the min over the last one or two windows. */
const LATENCY_WINDOW = 100;

/** A concurrency limit that grows while the downstream copes and shrinks when it pushes back. */
export class AdaptiveLimit {
  readonly #min: number;
  readonly #max: number;
  readonly #backoffRatio: number;
  readonly #latencyTolerance: number;
  readonly #latencySlackMs: number;
  readonly #onChange: ((limit: number) => void) | undefined;
  #limit: number;
  /** Healthy successes since the last increase. */
  #successes = 0;
  /** Completions still to see before another decrease: one round of the calls in flight. */
  #holdOff = 0;
  #bestPrevious = Infinity;
  #bestCurrent = Infinity;
  #samples = 0;

  /** Creates a limit; throws a RangeError for inconsistent options. */
  constructor(options: AdaptiveLimitOptions = {}) {
    this.#max = options.max ?? 64;
    this.#min = options.min ?? 1;
    this.#backoffRatio = options.backoffRatio ?? 0.7;
    this.#latencyTolerance = options.latencyTolerance ?? 2.5;
    this.#latencySlackMs = options.latencySlackMs ?? 100;
    this.#onChange = options.onChange;
    if (!Number.isInteger(this.#min) || this.#min < 1) {
      throw new RangeError(
        `Cannot use AdaptiveLimit min: received ${this.#min}, expected an integer >= 1`,
      );
    }
    if (!Number.isInteger(this.#max) || this.#max < this.#min) {
      throw new RangeError(
        `Cannot use AdaptiveLimit max: received ${this.#max}, expected an integer >= min (${this.#min})`,
      );
    }
    if (!(this.#backoffRatio > 0 && this.#backoffRatio < 1)) {
      throw new RangeError(
        `Cannot use AdaptiveLimit backoffRatio: received ${this.#backoffRatio}, expected a number in (0, 1)`,
      );
    }
    if (!(this.#latencyTolerance >= 1)) {
      throw new RangeError(
        `Cannot use AdaptiveLimit latencyTolerance: received ${this.#latencyTolerance}, expected a number >= 1`,
      );
    }
    const initial = Math.round(options.initial ?? Math.min(this.#max, 8));
    this.#limit = Math.min(this.#max, Math.max(this.#min, initial));
  }

  /** The current limit. */
  get limit(): number {
    return this.#limit;
  }

  /**
   * A request succeeded in `latencyMs`: additive increase, +1 per `limit`
   * healthy successes (about +1 per round trip), unless the latency says
   * congestion. `inFlight`, when given, is how many requests were running:
   * below half the limit the limit is not what holds throughput back, so it
   * does not grow (otherwise an idle period would inflate it to `max`).
   */
  onSuccess(latencyMs: number, inFlight?: number): void {
    this.#completed();
    const best = this.#observe(latencyMs);
    if (latencyMs > Math.max(best * this.#latencyTolerance, best + this.#latencySlackMs)) return;
    if (inFlight !== undefined && inFlight * 2 < this.#limit) return;
    if (++this.#successes >= this.#limit) {
      this.#successes = 0;
      this.#set(this.#limit + 1);
    }
  }

  /**
   * The downstream pushed back (429, 503, timeout): multiplicative decrease.
   * Further overloads are ignored until about one round of the calls then in
   * flight has completed, so one burst of failures counts once.
   */
  onOverload(): void {
    if (this.#holdOff > 0) {
      this.#holdOff--;
      return;
    }
    // The other calls in flight with this one were sent at the old limit.
    this.#holdOff = this.#limit - 1;
    this.#successes = 0;
    this.#set(Math.floor(this.#limit * this.#backoffRatio));
  }

  #completed(): void {
    if (this.#holdOff > 0) this.#holdOff--;
  }

  /** Records a latency sample; returns the best latency of the recent windows. */
  #observe(latencyMs: number): number {
    // Two alternating windows let the baseline follow a downstream that became slower for good.
    if (this.#samples++ >= LATENCY_WINDOW) {
      this.#samples = 1;
      this.#bestPrevious = this.#bestCurrent;
      this.#bestCurrent = Infinity;
    }
    this.#bestCurrent = Math.min(this.#bestCurrent, latencyMs);
    return Math.min(this.#bestPrevious, this.#bestCurrent);
  }

  #set(limit: number): void {
    const next = Math.min(this.#max, Math.max(this.#min, limit));
    if (next === this.#limit) return;
    this.#limit = next;
    this.#onChange?.(next);
  }
}

/** Options for {@linkcode adaptiveSemaphore}. */
export type AdaptiveSemaphoreOptions = AdaptiveLimitOptions & {
  /** Time: each call's latency on its monotonic clock. */
  clock: Pick<Clock, "monotonic">;
  /**
   * Whether an error means overload. Default: HttpError 429/503, TimeoutError,
   * a DOMException "TimeoutError", an SqsError 429/503 or throttling code.
   */
  isOverload?: (err: unknown) => boolean;
};

/** Default overload test: the downstream said "too much" or did not answer in time. */
function defaultIsOverload(err: unknown): boolean {
  if (err instanceof HttpError) return err.status === 429 || err.status === 503;
  if (err instanceof SqsError) {
    return err.status === 429 || err.status === 503 || /throttl/i.test(err.code);
  }
  if (err instanceof TimeoutError) return true;
  return err instanceof DOMException && err.name === "TimeoutError";
}

/**
 * A Semaphore whose limit follows an AdaptiveLimit: `run(fn)` measures the
 * latency of `fn` and classifies its errors with `isOverload`; other errors
 * leave the limit alone. `run(fn, signal)`: `fn` never starts once `signal` has
 * aborted, even when a slot was granted in that same turn.
 */
export function adaptiveSemaphore(options: AdaptiveSemaphoreOptions): {
  run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  readonly limit: number;
  readonly active: number;
  readonly pending: number;
} {
  const { clock, isOverload = defaultIsOverload, onChange } = options;
  const limiter = new AdaptiveLimit({
    ...options,
    // Only called after construction, by which time `sem` exists.
    onChange: (limit) => {
      sem.setLimit(limit);
      onChange?.(limit);
    },
  });
  const sem = new Semaphore({ limit: limiter.limit });
  return {
    async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
      const release = await sem.acquire(signal);
      // Granted in the same turn the signal aborted: the queued call must still not start.
      if (signal?.aborted) {
        release();
        throw signal.reason;
      }
      const inFlight = sem.active;
      const start = clock.monotonic();
      try {
        const result = await fn();
        limiter.onSuccess(clock.monotonic() - start, inFlight);
        return result;
      } catch (err) {
        if (isOverload(err)) limiter.onOverload();
        throw err;
      } finally {
        release();
      }
    },
    get limit() {
      return limiter.limit;
    },
    get active() {
      return sem.active;
    },
    get pending() {
      return sem.pending;
    },
  };
}
