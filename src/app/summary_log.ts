/**
 * The periodic summary line: at `info` the worker does not log each accepted
 * message (journald would drop lines within seconds), so every interval it
 * says what happened since the last summary: counts by outcome, msg/s,
 * receive→final p50/p99, in flight, breaker states and queue depth.
 */
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";

/** What the summary reads from the running worker at each tick. */
export interface SummarySnapshot {
  inFlight: number;
  /** Breaker state by target, e.g. `{ enrichment: "closed" }`. */
  breakers: Record<string, string>;
  /** Main queue, visible and in flight (from the last depth poll). */
  queueVisible: number;
  queueInFlight: number;
}

/** Options for {@linkcode SummaryLog}. */
export interface SummaryLogOptions {
  logger: Pick<Logger, "info">;
  /** Interval between summary lines, ms. Default 30000. */
  intervalMs?: number;
  /** Its interval's timer, and the time each line covers. */
  clock: Pick<Clock, "monotonic" | "timer">;
  /** Durations kept per interval for the percentiles (counts stay exact). Default 100000. */
  maxSamples?: number;
}

/** The `q` quantile (0..1) of ascending `sorted` by nearest rank; 0 when empty. */
export function nearestRank(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** The fields of one summary line: pure, so each number is tested on its own. */
export function summaryFields(
  counts: ReadonlyMap<string, number>,
  durationsMs: number[],
  elapsedMs: number,
  snapshot: SummarySnapshot,
): Record<string, unknown> {
  let total = 0;
  const outcomes: Record<string, number> = {};
  for (const [outcome, n] of counts) {
    outcomes[outcome] = n;
    total += n;
  }
  const sorted = durationsMs.sort((a, b) => a - b);
  return {
    interval_s: Math.round(elapsedMs / 100) / 10,
    outcomes,
    total,
    msg_per_s: elapsedMs > 0 ? Math.round((total * 10_000) / elapsedMs) / 10 : 0,
    p50_ms: Math.round(nearestRank(sorted, 0.5)),
    p99_ms: Math.round(nearestRank(sorted, 0.99)),
    in_flight: snapshot.inFlight,
    breakers: snapshot.breakers,
    queue_visible: snapshot.queueVisible,
    queue_in_flight: snapshot.queueInFlight,
  };
}

const EMPTY: SummarySnapshot = {
  inFlight: 0,
  breakers: {},
  queueVisible: 0,
  queueInFlight: 0,
};

/** Collects final outcomes and writes a "summary" line every interval. */
export class SummaryLog {
  readonly #options: SummaryLogOptions;
  readonly #maxSamples: number;
  #counts = new Map<string, number>();
  #durations: number[] = [];
  #since: number;
  #cancel: (() => void) | undefined;
  #snapshot: (() => SummarySnapshot) | undefined;

  constructor(options: SummaryLogOptions) {
    this.#options = options;
    this.#maxSamples = options.maxSamples ?? 100_000;
    this.#since = options.clock.monotonic();
  }

  /** What each line reports beside the outcomes: in flight, breakers, queue depth. */
  observe(snapshot: () => SummarySnapshot): void {
    this.#snapshot = snapshot;
  }

  /** Counts one final outcome and its receive→final duration. */
  record(outcome: string, durationMs: number): void {
    this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + 1);
    if (this.#durations.length < this.#maxSamples) this.#durations.push(durationMs);
  }

  /** Starts the interval; `stop()` ends it. */
  start(): void {
    if (this.#cancel) return;
    const ms = this.#options.intervalMs ?? 30_000;
    // A timer per interval, set again each time: the clock has no repeating timer.
    const next = () => {
      this.#cancel = this.#options.clock.timer(ms, () => {
        this.flush();
        if (this.#cancel) next();
      });
    };
    next();
  }

  /** Writes a summary of what happened since the last one, and starts counting afresh. */
  flush(): void {
    const now = this.#options.clock.monotonic();
    const fields = summaryFields(
      this.#counts,
      this.#durations,
      now - this.#since,
      this.#snapshot?.() ?? EMPTY,
    );
    this.#counts = new Map();
    this.#durations = [];
    this.#since = now;
    this.#options.logger.info("summary", fields);
  }

  /** Ends the interval and writes a last summary for the time since the previous one. */
  stop(): void {
    if (!this.#cancel) return;
    this.#cancel();
    this.#cancel = undefined;
    this.flush();
  }
}
