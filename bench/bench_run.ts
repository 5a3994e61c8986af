/**
 * The benchmark's record of one lab run and of the machine, shared by main.ts and the renderers.
 */
import type { LabSummary, Scenario } from "../lab/lab.ts";

/**
 * The workers the benchmark compares: sluice as `deno task start` runs it, the compiled binary
 * (dist/sluice, when built), the lean baseline, the naive and sqs-consumer baselines, and
 * "ceiling", sluice against instant downstreams.
 */
export type WorkerName = "sluice" | "binary" | "lean" | "naive" | "sqs-consumer" | "ceiling";

/** One lab run as the report needs it. */
export interface BenchRun {
  scenario: Scenario;
  worker: WorkerName;
  /** messages generated for this run */
  messages: number;
  /** time cap from the worker's first receive, seconds (baselines), or undefined */
  capSeconds?: number;
  /** the lab's summary, or undefined when runLab threw */
  summary?: LabSummary;
  /** runLab's error, when it threw */
  error?: string;
  /** msg/s of every repetition when the run was repeated (--repeat); this run is the median */
  repeats?: number[];
  /** the efficiency figures of every repetition (one entry per run), for per-figure medians */
  tries?: Efficiency[];
}

/** The efficiency figures of one run. */
export interface Efficiency {
  /** p10–p90 of the acceptance times */
  steadyMsgPerSecond: number;
  /** CPU of the worker's process tree per settled message, ms (0 = unknown) */
  cpuMsPerMessage: number;
  peakRssMb: number;
  /** first receive to the last final outcome, s */
  drainSeconds: number;
  /** enrichment calls that arrived inside a brownout window */
  brownoutCalls: number;
  /** the first enrichment success after the first window, ms after its end (NaN: none) */
  recoveryMs: number;
}

/** A run's efficiency figures, or undefined when it produced no summary. */
export function efficiencyOf(run: BenchRun): Efficiency | undefined {
  const s = run.summary;
  if (s === undefined) return undefined;
  return {
    steadyMsgPerSecond: s.steadyMsgPerSecond,
    cpuMsPerMessage: s.cpuMsPerMessage,
    peakRssMb: s.peakRssMb,
    drainSeconds: s.durationSeconds,
    brownoutCalls: s.enrichBrownoutRequests,
    recoveryMs: s.enrichRecoveryMs ?? Number.NaN,
  };
}

/** The median of the numbers (the lower middle one of an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Facts about the machine and the invocation, printed at the top of the report. */
export interface BenchContext {
  date: string;
  command: string;
  nproc: number;
  cpuModel: string;
  memoryGb: number;
  os: string;
  runtime: string;
  /** /proc/loadavg (1, 5, 15 min) when the bench started and ended: other load skews figures */
  loadAtStart: string;
  loadAtEnd: string;
  messages: number;
  baselineMessages: number;
  /** messages of the full brownout runs (sluice, binary, lean) */
  brownoutMessages: number;
  baselineSeconds: number;
  repeat: number;
  users: number;
  seed: number;
}

/** Row and legend labels. */
export const WORKER_LABEL: Record<WorkerName, string> = {
  sluice: "sluice",
  naive: "naive",
  "sqs-consumer": "sqs-consumer",
  ceiling: "sluice, instant downstreams (ceiling)",
  binary: "sluice binary (dist/sluice)",
  lean: "lean baseline",
};

/** msg/s of a run, or undefined when it produced no summary. */
export function throughput(run: BenchRun | undefined): number | undefined {
  return run?.summary?.msgPerSecond;
}

/** a / b as "12.3×", or "–" when either side is missing or b is 0 */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b > 0)) return "–";
  return `${(a / b).toFixed(a / b >= 10 ? 0 : 1)}×`;
}

/** The run of one worker in one scenario. */
export function find(
  runs: BenchRun[],
  scenario: Scenario,
  worker: WorkerName,
): BenchRun | undefined {
  return runs.find((r) => r.scenario === scenario && r.worker === worker);
}

/** Whether the bench ended the run at its time cap (the lab then reports it as interrupted). */
export function wasCapped(run: BenchRun): boolean {
  return run.capSeconds !== undefined &&
    (run.summary?.problems.some((p) => p.startsWith("interrupted")) ?? false);
}

/**
 * Whether a capped run had accepted every valid message before the cap: its idle tail then
 * counts in the duration, so its msg/s is a lower bound (give it more messages).
 */
export function drainedBeforeCap(run: BenchRun): boolean {
  const s = run.summary;
  // A message or two waiting out a visibility timeout after a failure still counts as drained.
  return s !== undefined && wasCapped(run) && s.lost <= s.valid * 0.01;
}

/** Per-message request figures. */
export interface PerMessage {
  sqsRequests: number;
  enrichRequests: number;
  enrichIds: number;
}

/**
 * Requests per message. The lab divides by every message it generated, which is right for a run
 * that settled them all; a capped run only handled part of the queue, so its counts are divided
 * by the messages it handled (accepted plus duplicate submissions) instead.
 */
export function perMessage(run: BenchRun): PerMessage | undefined {
  const s = run.summary;
  if (s === undefined) return undefined;
  if (!wasCapped(run)) {
    return {
      sqsRequests: s.sqsRequestsPerMessage,
      enrichRequests: s.enrichRequestsPerMessage,
      enrichIds: s.enrichIdsPerMessage,
    };
  }
  const handled = Math.max(1, s.accepted + s.duplicateSubmissions);
  return {
    sqsRequests: s.sqsRequests / handled,
    enrichRequests: s.enrichRequests / handled,
    // the lab reports ids per valid message; scale back to a count first
    enrichIds: (s.enrichIdsPerMessage * s.valid) / handled,
  };
}

/** Valid messages a run sent to the DLQ (the lab reports them as non-poison DLQ bodies). */
export function validDeadLettered(run: BenchRun): number | undefined {
  const s = run.summary;
  if (s === undefined) return undefined;
  for (const p of s.problems) {
    const m = /^(\d+) DLQ messages are not poison bodies/.exec(p);
    if (m) return Number(m[1]);
  }
  return 0;
}
