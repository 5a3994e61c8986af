/**
 * The enrichment scenarios of seed 000 section 8, as numbers. One table so the
 * simulator, the validator and the summary agree on what each name means.
 */

import type { Dataset } from "./dataset.ts";
import type { sleep } from "../src/lib/clock.ts";

export type Scenario = "io_mild" | "io_heavy" | "flaky" | "brownout" | "outage";

export const SCENARIOS: readonly Scenario[] = [
  "io_mild",
  "io_heavy",
  "flaky",
  "brownout",
  "outage",
];

/** What both simulators (enrich_sim.ts, validator_sim.ts) are driven by. */
export interface SimulatorOptions {
  /** the users they know */
  dataset: Dataset;
  /** latency and error behaviour, default "io_mild" */
  scenario?: Scenario;
  /** seed of the latency/error stream, default 1 */
  seed?: number;
  /** no latency, no simulated errors (the lab's ceiling) */
  instant?: boolean;
  /** clock for brownout windows and accept times, default Date.now */
  now?: () => number;
  /** default: retry.ts's abortable sleep */
  sleep?: typeof sleep;
}

/** Behaviour of the enrichment API under one scenario. */
export interface ScenarioProfile {
  /** latency of one call: lognormal median (ms) and shape; io_mild is narrow, io_heavy has a long tail */
  latencyMedianMs: number;
  latencySigma: number;
  /** extra latency per id of a batch call */
  perIdMs: number;
  /** probability of a 500 per call */
  error500: number;
  /** probability of a 429 with Retry-After per call */
  error429: number;
  /** probability that a call hangs for `hangMs` (a timeout on the worker's side) */
  hang: number;
  /** probability that an id of a successful batch lands in `errors` */
  batchIdError: number;
  /**
   * brownout windows: every `periodMs` from the first enrichment request (so every worker meets
   * its first window at the same point of its run) and `offsetMs` after it, the first `windowMs`
   * are degraded; a 503 says `Retry-After: retryAfterSeconds` (none when 0)
   */
  brownout?: {
    offsetMs?: number;
    periodMs: number;
    windowMs: number;
    error503: number;
    retryAfterSeconds: number;
    latencyMs: [number, number];
  };
  /** probability of a validator 503 per submission */
  validator5xx: number;
}

export const SCENARIO_PROFILES: Readonly<Record<Scenario, ScenarioProfile>> = {
  io_mild: {
    latencyMedianMs: 10,
    latencySigma: 0.3,
    perIdMs: 0.2,
    error500: 0.002,
    error429: 0,
    hang: 0,
    batchIdError: 0.001,
    validator5xx: 0,
  },
  io_heavy: {
    // ln(400 / 50) / 2.326 ≈ 0.9: median 50 ms, p99 about 400 ms.
    latencyMedianMs: 50,
    latencySigma: 0.9,
    perIdMs: 0.5,
    error500: 0.005,
    error429: 0.002,
    hang: 0,
    batchIdError: 0.002,
    validator5xx: 0,
  },
  flaky: {
    latencyMedianMs: 20,
    latencySigma: 0.6,
    perIdMs: 0.3,
    error500: 0.08,
    error429: 0.05,
    hang: 0.003,
    batchIdError: 0.05,
    validator5xx: 0.01,
  },
  brownout: {
    latencyMedianMs: 12,
    latencySigma: 0.4,
    perIdMs: 0.2,
    error500: 0.002,
    error429: 0,
    hang: 0,
    batchIdError: 0.001,
    // 3 s of 60 % 503 with Retry-After: 2, every 12 s.
    brownout: {
      periodMs: 12_000,
      windowMs: 3_000,
      error503: 0.6,
      retryAfterSeconds: 2,
      latencyMs: [1_500, 3_000],
    },
    validator5xx: 0,
  },
  outage: {
    latencyMedianMs: 10,
    latencySigma: 0.3,
    perIdMs: 0.2,
    error500: 0,
    error429: 0,
    hang: 0,
    batchIdError: 0,
    // Every call 2 s to 12 s after the first answers 503 at once, without Retry-After.
    brownout: {
      offsetMs: 2_000,
      periodMs: 1e12,
      windowMs: 10_000,
      error503: 1,
      retryAfterSeconds: 0,
      latencyMs: [5, 20],
    },
    validator5xx: 0,
  },
};

/** Whether a string names a scenario. */
export function isScenario(value: string): value is Scenario {
  return (SCENARIOS as readonly string[]).includes(value);
}
