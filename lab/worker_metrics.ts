/**
 * What the lab reads from the worker's /metrics for the live line and the summary: retries and
 * breaker opens. A restarted worker starts its counters at 0 again, so totals accumulate across
 * restarts; breaker opens are counted as transitions to "open" seen between scrapes.
 */

/** Sums of one metric's samples in Prometheus text, by the value of one label ("" = all). */
export function sumMetric(text: string, name: string, label?: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || line.startsWith("#")) continue;
    const match = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const value = Number(match[3]);
    if (!Number.isFinite(value)) continue;
    const key = label ? (new RegExp(`${label}="([^"]*)"`).exec(match[2] ?? "")?.[1] ?? "") : "";
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

export interface WorkerCounts {
  retries: number;
  breakerOpens: number;
}

/** Accumulates retries and breaker opens over scrapes (and worker restarts). */
export class WorkerMetricsTracker {
  #retriesBase = 0;
  #retriesLast = 0;
  #opens = 0;
  #states = new Map<string, number>();

  /** Takes one scrape of /metrics. */
  observe(text: string): void {
    const retries = [...sumMetric(text, "sluice_retries_total").values()].reduce(
      (a, b) => a + b,
      0,
    );
    // A smaller total means a new process: what the old one counted stays counted.
    if (retries < this.#retriesLast) this.#retriesBase += this.#retriesLast;
    this.#retriesLast = retries;
    for (const [target, state] of sumMetric(text, "sluice_breaker_state", "target")) {
      if (state === 2 && this.#states.get(target) !== 2) this.#opens++;
      this.#states.set(target, state);
    }
  }

  counts(): WorkerCounts {
    return { retries: this.#retriesBase + this.#retriesLast, breakerOpens: this.#opens };
  }
}

/** Scrapes the worker's /metrics into `tracker`; a worker that is down or restarting is skipped. */
export async function scrapeWorker(
  port: string,
  tracker: WorkerMetricsTracker,
  signal?: AbortSignal,
): Promise<void> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
      signal: signal
        ? AbortSignal.any([signal, AbortSignal.timeout(1000)])
        : AbortSignal.timeout(1000),
    });
    const text = await response.text();
    if (response.ok) tracker.observe(text);
  } catch {
    // Killed by chaos, or not listening yet: the next scrape catches up.
  }
}
