/**
 * A circuit breaker: stops calling a downstream whose failure rate over a
 * rolling window is too high, then probes its recovery with a trickle. It stays
 * open for a short floor, or as long as the downstream asked (`Retry-After` on a
 * failure), whichever is later: a fixed long cooldown makes recovery slower than
 * the outage. Half open, it admits one call, then as many at once as the
 * downstream's answers earn (`probeStep`): a partial brownout is worked through at
 * a share of the calls, a full outage costs one call per cooldown. Closed, after a
 * failure, it lets one call out at a time until one succeeds, so the failures that
 * open it are not multiplied by the calls in flight (docs/failure-handling.md).
 */
import type { Clock } from "./clock.ts";
import { CircuitOpenError, isLocalError } from "./errors.ts";

/** closed: calls pass; open: calls are refused; half_open: a few probes pass. */
export type BreakerState = "closed" | "half_open" | "open";

/** Options for {@linkcode CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Name used in errors and metrics, e.g. "enrichment". */
  name: string;
  /** Failure ratio in the window that opens the breaker, in (0, 1]. Default 0.5. */
  failureRateThreshold?: number;
  /** Calls the window must hold before the ratio counts. Default 20. */
  minimumCalls?: number;
  /**
   * Failures in a row that open the breaker whatever the window says: a downstream that was
   * fine until now fails every call long before the window's ratio turns. Default 5.
   */
  consecutiveFailures?: number;
  /** Rolling window in ms, kept as 10 buckets. Default 10000. */
  windowMs?: number;
  /**
   * The shortest time the breaker stays open before it lets probes through, in ms; a failure's
   * `retryAfterMs` (the downstream's Retry-After) keeps it open longer. Default 1000.
   */
  cooldownMs?: number;
  /** The longest time the breaker stays open, whatever Retry-After said, in ms. Default 60000. */
  maxOpenMs?: number;
  /**
   * Half open: successes that close the breaker (with failures below the threshold among the
   * last probes), and the failures in a row that open it again. Default 3.
   */
  halfOpenProbes?: number;
  /** Time: durations and expiries on its monotonic clock; its timers bound a wait for a verdict. */
  clock: Pick<Clock, "monotonic" | "timer">;
  /** Called on every state change. */
  onStateChange?: (to: BreakerState, from: BreakerState) => void;
}

const BUCKETS = 10;

/** Probes half open admits at once at most, however well they do. */
const MAX_ALLOWANCE = 32;
/** How far reopens stretch the open floor: twice the floor at most. */
const REOPEN_GROWTH_MAX = 2;
/**
 * How long a call waits, after a failure, for the verdict of one in flight before it goes anyway:
 * an outage's fast failures answer well within it; a hung call (its timeout is seconds) must not
 * hold every other call for that long.
 */
export const VERDICT_WAIT_MS = 250;
/** Probe results remembered for the closing ratio. */
const RECENT = 8;

/** Half open's account of its probes. */
export interface ProbeTally {
  /** probes admitted at once */
  allowance: number;
  successes: number;
  /** failures since the last success */
  streak: number;
  /** the last RECENT results, newest in bit 0; a set bit is a failure */
  recent: number;
  /** how many results `recent` holds (≤ RECENT) */
  seen: number;
}

export const FRESH_TALLY: ProbeTally = {
  allowance: 1,
  successes: 0,
  streak: 0,
  recent: 0,
  seen: 0,
};

/**
 * A probe's result half open; pure. A success doubles the probes admitted at once, a failure
 * halves them. Closed after `probes` successes once failures are below `threshold` among the
 * last RECENT; open again on a failure before any success or `probes` failures in a row.
 */
export function probeStep(
  t: ProbeTally,
  success: boolean,
  o: { probes: number; threshold: number },
): { tally: ProbeTally; to: BreakerState } {
  const recent = ((t.recent << 1) | (success ? 0 : 1)) & ((1 << RECENT) - 1);
  const seen = Math.min(RECENT, t.seen + 1);
  if (success) {
    const tally = {
      allowance: Math.min(MAX_ALLOWANCE, t.allowance * 2),
      successes: t.successes + 1,
      streak: 0,
      recent,
      seen,
    };
    const failures = popcount(recent);
    const close = tally.successes >= o.probes && failures / seen < o.threshold;
    return { tally, to: close ? "closed" : "half_open" };
  }
  const tally = {
    allowance: Math.max(1, Math.floor(t.allowance / 2)),
    successes: t.successes,
    streak: t.streak + 1,
    recent,
    seen,
  };
  return { tally, to: t.successes === 0 || tally.streak >= o.probes ? "open" : "half_open" };
}

function popcount(bits: number): number {
  let n = 0;
  for (let b = bits; b !== 0; b &= b - 1) n++;
  return n;
}

/**
 * When an open state entered at `now` ends: after the floor, or at the time the downstream asked
 * for (`askedUntil`, from Retry-After), whichever is later, but no later than `now + maxMs`.
 */
export function openUntil(
  now: number,
  floorMs: number,
  maxMs: number,
  askedUntil: number | undefined,
): number {
  const asked = askedUntil === undefined ? 0 : askedUntil - now;
  return now + Math.min(maxMs, Math.max(floorMs, asked));
}

/** The `retryAfterMs` a failure carries (HttpError from a Retry-After header), if any. */
function retryAfterOf(err: unknown): number | undefined {
  const ms = (err as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof ms === "number" && ms >= 0 && Number.isFinite(ms) ? ms : undefined;
}

interface Bucket {
  /** Which bucket-sized slice of time (now / bucketMs) these counts belong to. */
  slot: number;
  successes: number;
  failures: number;
}

/** Guards calls to one downstream. */
export class CircuitBreaker {
  /** Name used in errors and metrics. */
  readonly name: string;
  readonly #threshold: number;
  readonly #minimumCalls: number;
  readonly #consecutive: number;
  readonly #bucketMs: number;
  readonly #cooldownMs: number;
  readonly #maxOpenMs: number;
  readonly #probes: number;
  readonly #clock: Pick<Clock, "monotonic" | "timer">;
  readonly #onStateChange: ((to: BreakerState, from: BreakerState) => void) | undefined;

  #state: BreakerState = "closed";
  /** Bumped on each state change so that results of calls admitted earlier are ignored. */
  #generation = 0;
  /** When the open state ends (half_open from then on). */
  #openUntil = 0;
  /** The latest time a failure's Retry-After asked us to wait until, since the last close. */
  #askedUntil: number | undefined;
  #probesInFlight = 0;
  /** closed: failures since the last success */
  #streak = 0;
  /** closed: calls admitted in this generation and not yet settled */
  #closedInFlight = 0;
  /** Calls waiting for the verdict of the one in flight (closed, after a failure). */
  #waiters: Array<() => void> = [];
  /** half_open -> open with no success in between, since the last close */
  #reopens = 0;
  #tally: ProbeTally = FRESH_TALLY;
  #buckets: Bucket[] = [];
  #lastFailure: { error: unknown; at: number } | undefined;

  /** Creates a closed breaker; throws a RangeError for out-of-range options. */
  constructor(options: CircuitBreakerOptions) {
    this.name = options.name;
    this.#threshold = options.failureRateThreshold ?? 0.5;
    this.#minimumCalls = options.minimumCalls ?? 20;
    this.#consecutive = options.consecutiveFailures ?? 5;
    this.#bucketMs = (options.windowMs ?? 10_000) / BUCKETS;
    this.#cooldownMs = options.cooldownMs ?? 1000;
    this.#maxOpenMs = options.maxOpenMs ?? 60_000;
    this.#probes = options.halfOpenProbes ?? 3;
    this.#clock = options.clock;
    this.#onStateChange = options.onStateChange;
    if (!(this.#threshold > 0 && this.#threshold <= 1)) {
      throw new RangeError(`failureRateThreshold must be in (0, 1], got ${this.#threshold}`);
    }
    if (!(this.#minimumCalls >= 1)) throw new RangeError("minimumCalls must be >= 1");
    if (!(this.#consecutive >= 1)) throw new RangeError("consecutiveFailures must be >= 1");
    if (!(this.#bucketMs > 0)) throw new RangeError("windowMs must be > 0");
    if (!(this.#probes >= 1)) throw new RangeError("halfOpenProbes must be >= 1");
    if (!(this.#cooldownMs >= 0 && this.#maxOpenMs >= this.#cooldownMs)) {
      throw new RangeError(
        `cooldownMs must be >= 0 and maxOpenMs >= cooldownMs, got ${this.#cooldownMs} and ${this.#maxOpenMs}`,
      );
    }
    this.#resetWindow();
  }

  /** The current state; reading it moves open -> half_open once the cooldown has passed. */
  get state(): BreakerState {
    if (this.#state === "open" && this.#clock.monotonic() >= this.#openUntil) {
      this.#transition("half_open");
    }
    return this.#state;
  }

  /** The last failure recorded (the error, or what the caller passed to `record`), and when. */
  get lastFailure(): { error: unknown; at: number } | undefined {
    return this.#lastFailure;
  }

  /** Ms until an open breaker lets a probe through (0 if not open). */
  remainingCooldownMs(): number {
    if (this.state !== "open") return 0;
    return Math.max(0, this.#openUntil - this.#clock.monotonic());
  }

  /** Whether a call may pass now (does not consume a probe slot). */
  canPass(): boolean {
    const state = this.state;
    if (state === "closed") return true;
    if (state === "open") return false;
    return this.#probesInFlight < this.#tally.allowance;
  }

  /**
   * Throws CircuitOpenError when the call may not pass; otherwise runs `fn`
   * and records the result. `isFailure(err)` decides whether an error counts
   * against the downstream (default: every error); errors it rejects count as
   * successes, since the downstream did answer. A local error (isLocalError: a
   * failure in sluice before or instead of a request) and an abort (a stop abandoning the
   * call) count neither way: they say nothing about the downstream. Errors are always
   * rethrown.
   */
  async run<T>(
    fn: () => Promise<T>,
    isFailure: (err: unknown) => boolean = () => true,
  ): Promise<T> {
    // After a failure, one call at a time until one succeeds: the others wait for its verdict
    // (a few ms; VERDICT_WAIT_MS at most) instead of going out beside it, so an outage's first
    // failures are few.
    if (this.#waitsForVerdict()) {
      // Checked again in the same turn as the call is counted: one waiter goes, not all.
      const deadline = this.#clock.monotonic() + VERDICT_WAIT_MS;
      for (let left = VERDICT_WAIT_MS; this.#waitsForVerdict() && left > 0;) {
        await this.#verdict(left);
        left = deadline - this.#clock.monotonic();
      }
    }
    if (!this.canPass()) throw new CircuitOpenError(this.name, this.remainingCooldownMs());
    const probe = this.#state === "half_open";
    if (probe) this.#probesInFlight++;
    else this.#closedInFlight++;
    const generation = this.#generation;
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      // Our own abort (a stop) says nothing about the downstream either.
      if (isLocalError(err) || isAbortError(err)) {
        this.#unrecorded(generation, probe);
      } else {
        const failed = isFailure(err);
        if (failed) this.#lastFailure = { error: err, at: this.#clock.monotonic() };
        this.#settle(generation, probe, !failed, retryAfterOf(err));
      }
      throw err;
    }
    this.#settle(generation, probe, true);
    return result;
  }

  /**
   * Records a result for callers that cannot wrap the call (e.g. the receive loop);
   * `error` describes a failure for `lastFailure`, `retryAfterMs` is how long a failed
   * downstream asked us to wait, if it said.
   */
  record(success: boolean, error?: unknown, retryAfterMs?: number): void {
    if (!success && error !== undefined) this.#lastFailure = { error, at: this.#clock.monotonic() };
    const state = this.state;
    if (state === "open") return;
    if (!success && retryAfterMs !== undefined) {
      this.#askedUntil = Math.max(this.#askedUntil ?? 0, this.#clock.monotonic() + retryAfterMs);
    }
    if (state === "half_open") {
      const step = probeStep(this.#tally, success, {
        probes: this.#probes,
        threshold: this.#threshold,
      });
      this.#tally = step.tally;
      this.#transition(step.to);
      return;
    }
    this.#count(success);
    this.#streak = success ? 0 : this.#streak + 1;
    if (!success) {
      const { successes, failures } = this.#totals();
      const calls = successes + failures;
      const rate = calls >= this.#minimumCalls && failures / calls >= this.#threshold;
      if (rate || this.#streak >= this.#consecutive) this.#transition("open");
    }
  }

  #settle(generation: number, probe: boolean, success: boolean, retryAfterMs?: number): void {
    // A call admitted before the last state change says nothing about the current state.
    if (generation !== this.#generation) return;
    if (probe) this.#probesInFlight--;
    else this.#closedInFlight--;
    this.record(success, undefined, success ? undefined : retryAfterMs);
    this.#wake();
  }

  /** Frees the call's slot (a probe's or a closed one's) without recording a result. */
  #unrecorded(generation: number, probe: boolean): void {
    if (generation !== this.#generation) return;
    if (probe) this.#probesInFlight--;
    else this.#closedInFlight--;
    this.#wake();
  }

  /** A failure is the last word and a call is out: a new call waits for that one's verdict. */
  #waitsForVerdict(): boolean {
    return this.#state === "closed" && this.#streak > 0 && this.#closedInFlight > 0;
  }

  /** Resolves at the next settle or state change, or after `ms`. */
  #verdict(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const cancel = this.#clock.timer(ms, resolve);
      this.#waiters.push(() => {
        cancel();
        resolve();
      });
    });
  }

  /** Lets the waiting calls look again (the state, the streak or the calls in flight moved). */
  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#generation++;
    this.#probesInFlight = 0;
    this.#closedInFlight = 0;
    this.#streak = 0;
    // A probe that met the outage again: the floor grows by half per reopen, to twice itself
    // (1 s, 1.5 s, then 2 s by default: a long outage costs a call per 2 s, recovery stays within 2 s).
    if (to === "open" && from === "half_open" && this.#tally.successes === 0) this.#reopens++;
    this.#tally = FRESH_TALLY;
    if (to === "open") {
      const now = this.#clock.monotonic();
      const growth = Math.min(REOPEN_GROWTH_MAX, 1.5 ** this.#reopens);
      const floor = Math.min(this.#maxOpenMs, this.#cooldownMs * growth);
      this.#openUntil = openUntil(now, floor, this.#maxOpenMs, this.#askedUntil);
    }
    if (to === "closed") {
      this.#askedUntil = undefined;
      this.#reopens = 0;
    }
    if (to !== "half_open") this.#resetWindow();
    this.#wake();
    this.#onStateChange?.(to, from);
  }

  #resetWindow(): void {
    this.#buckets = Array.from({ length: BUCKETS }, () => ({
      slot: -Infinity,
      successes: 0,
      failures: 0,
    }));
  }

  #count(success: boolean): void {
    const slot = Math.floor(this.#clock.monotonic() / this.#bucketMs);
    const bucket = this.#buckets[((slot % BUCKETS) + BUCKETS) % BUCKETS]!;
    if (bucket.slot !== slot) {
      bucket.slot = slot;
      bucket.successes = 0;
      bucket.failures = 0;
    }
    if (success) bucket.successes++;
    else bucket.failures++;
  }

  #totals(): { successes: number; failures: number } {
    const current = Math.floor(this.#clock.monotonic() / this.#bucketMs);
    let successes = 0;
    let failures = 0;
    for (const bucket of this.#buckets) {
      if (bucket.slot > current - BUCKETS) {
        successes += bucket.successes;
        failures += bucket.failures;
      }
    }
    return { successes, failures };
  }
}

/** The caller aborted the call (DOMException AbortError, as AbortController and fetch raise). */
function isAbortError(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === "AbortError";
}
