/**
 * In-process dedupe: the accepted message_ids of the last DEDUP_TTL_SECONDS (64-bit
 * hashes within a memory budget, IdWindow) and the ids being worked on now, so a
 * second copy waits for the first instead of being submitted beside it.
 */
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import { BYTES_PER_ENTRY, IdWindow } from "../lib/id_window.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";

export interface DedupeSettings {
  /** DEDUP_TTL_SECONDS */
  dedupTtlSeconds: number;
  /** Memory the accepted-id window may take, bytes. Default 28 MiB (IdWindow). */
  dedupMaxBytes?: number;
  /** The full speed the window is checked against at startup, msg/s. Default 3000. */
  dedupReferenceRate?: number;
}

export interface DedupeServices {
  metrics: SluiceMetrics;
  logger: Logger;
  /** The window's expiries and the warning's rate. */
  clock: Pick<Clock, "monotonic">;
}

/** This copy is the one at work; `done` tells the copies waiting whether it was accepted. */
export interface WorkClaim {
  done(accepted: boolean): void;
}

/** A copy at work. The promise later copies wait on is made only when one asks. */
class Working implements WorkClaim {
  readonly #working: Map<string, Working>;
  readonly #id: string;
  #settled: Promise<boolean> | undefined;
  #resolve: ((accepted: boolean) => void) | undefined;

  constructor(working: Map<string, Working>, id: string) {
    this.#working = working;
    this.#id = id;
    working.set(id, this);
  }

  /** Resolves, when this copy is done, to whether it was accepted. */
  settled(): Promise<boolean> {
    return this.#settled ??= new Promise((resolve) => this.#resolve = resolve);
  }

  done(accepted: boolean): void {
    this.#working.delete(this.#id);
    this.#resolve?.(accepted);
  }
}

export class Dedupe {
  readonly #settings: DedupeSettings;
  readonly #services: DedupeServices;
  readonly #accepted: IdWindow;
  /** message_id → the copy being worked on now. */
  readonly #working = new Map<string, Working>();
  #warnedAt = Number.NEGATIVE_INFINITY;

  constructor(settings: DedupeSettings, services: DedupeServices) {
    this.#settings = settings;
    this.#services = services;
    this.#accepted = new IdWindow({
      ttlMs: settings.dedupTtlSeconds * 1000,
      ...(settings.dedupMaxBytes !== undefined ? { maxBytes: settings.dedupMaxBytes } : {}),
      clock: services.clock,
    });
    this.#reportCapacity();
  }

  /**
   * "duplicate" when `id` was accepted; "behind" when another copy of it is at work now
   * (ask `afterFirst`); else a claim: this copy is the one at work until `done`.
   */
  claim(id: string): "duplicate" | "behind" | WorkClaim {
    if (this.#accepted.has(id)) return "duplicate";
    if (this.#working.has(id)) return "behind";
    return new Working(this.#working, id);
  }

  /**
   * Waits for the copy at work: "duplicate" if it was accepted, else a claim. The wait is
   * not cut short by the stop: the first copy's own end is bounded (a submission on the wire
   * is awaited, everything else stops with the grace), and a second copy handed back while
   * the first is being accepted would be submitted again by the next worker.
   */
  async afterFirst(id: string): Promise<"duplicate" | WorkClaim> {
    for (;;) {
      const first = this.#working.get(id);
      // Asked of the first copy itself too, so this holds even with DEDUP_TTL_SECONDS=0.
      if (this.#accepted.has(id) || (first && await first.settled())) return "duplicate";
      if (!this.#working.has(id)) return new Working(this.#working, id);
    }
  }

  /** Remembers an accepted id; says so (gauge, a warning every 10 min) when the window shrinks. */
  remember(id: string): void {
    const { metrics, logger, clock } = this.#services;
    this.#accepted.add(id);
    const window = Math.floor(this.#accepted.windowMs() / 1000);
    metrics.dedupeWindow.set(undefined, window);
    const t = clock.monotonic();
    if (window < this.#settings.dedupTtlSeconds && t - this.#warnedAt >= 600_000) {
      this.#warnedAt = t;
      logger.warn("the dedupe window is shorter than DEDUP_TTL_SECONDS at this rate", {
        dedup_ttl_seconds: this.#settings.dedupTtlSeconds,
        window_seconds: window,
        held: this.#accepted.size,
      });
    }
  }

  /**
   * The dedupe window the memory budget holds at full speed, said once at startup at info with
   * what to set: it is a capacity, not a fault (the defaults have it), and a warning at default
   * settings teaches people to ignore warnings. The window really shrinking is a warning
   * (`remember`).
   */
  #reportCapacity(): void {
    const ttl = this.#settings.dedupTtlSeconds;
    this.#services.metrics.dedupeWindow.set(undefined, ttl);
    const plan = dedupeCapacity(
      ttl,
      this.#accepted.maxEntries,
      this.#settings.dedupReferenceRate ?? 3000,
    );
    if (plan.windowSeconds >= ttl) return;
    this.#services.logger.info(
      `the dedupe window holds DEDUP_TTL_SECONDS=${ttl} up to ${plan.maxRate} msg/s (at ${plan.rate} msg/s: ${plan.windowSeconds} s); for a longer guarantee set IDEMPOTENCY_TABLE, or DEDUP_TTL_SECONDS=${plan.windowSeconds} for a window that is whole at ${plan.rate} msg/s`,
      {
        dedup_ttl_seconds: ttl,
        max_entries: this.#accepted.maxEntries,
        bytes_per_entry: Math.round(BYTES_PER_ENTRY * 10) / 10,
        max_rate: plan.maxRate,
        window_seconds_at_rate: plan.windowSeconds,
      },
    );
  }
}

/**
 * What a dedupe window of `maxEntries` ids holds: the highest rate at which it
 * keeps `ttlSeconds`, and the window at `rate` msg/s (at most the TTL).
 */
export function dedupeCapacity(
  ttlSeconds: number,
  maxEntries: number,
  rate: number,
): { rate: number; maxRate: number; windowSeconds: number } {
  const maxRate = ttlSeconds > 0 ? Math.floor(maxEntries / ttlSeconds) : Number.POSITIVE_INFINITY;
  const windowSeconds = Math.min(ttlSeconds, Math.floor(maxEntries / Math.max(rate, 1e-9)));
  return { rate, maxRate, windowSeconds };
}
