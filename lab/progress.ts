/**
 * The live progress line's figures: queue depths, acceptances and their rate over the last
 * ~2 s, the simulators' errors and the worker's own counters.
 */
import type { MessageSet } from "./generator.ts";
import type { LabInfra } from "./infra.ts";
import type { LabProgress } from "./lab_types.ts";
import { scrapeWorker, type WorkerMetricsTracker } from "./worker_metrics.ts";
import { faultedRequests } from "./table_proxy.ts";

export interface ProgressDeps {
  infra: LabInfra;
  set: MessageSet;
  workerMetrics: WorkerMetricsTracker;
  startedAt: number;
  /** messages sent so far */
  sent: () => number;
  signal?: AbortSignal | undefined;
}

/** 429/5xx answers and timeouts from the enrichment API and the validator simulators. */
export function downstreamErrors(infra: LabInfra): number {
  return Object.entries(infra.enrich.stats().byStatus)
    .filter(([status]) => !(Number(status) < 429))
    .reduce((n, [, count]) => n + count, 0) + infra.validator.stats().errors5xx;
}

/** A function that reads the progress now (it keeps the samples for the rate). */
export function createProgress(
  deps: ProgressDeps,
): (phase: LabProgress["phase"], kills: number) => Promise<LabProgress> {
  const { infra, set } = deps;
  const samples: Array<[number, number]> = [];
  // The table child answers in its own time: the line shows its last count, never waits for it.
  let tableFaults = 0;
  let asking = false;
  const askTableFaults = () => {
    if (!infra.tableFaults || !infra.table || asking) return;
    asking = true;
    infra.table.proxyStats().then((s) => (tableFaults = faultedRequests(s)), () => undefined)
      .finally(() => (asking = false));
  };
  return async (phase, kills) => {
    askTableFaults();
    const [main, dlq] = await Promise.all([
      infra.sqs.depth(infra.queueUrl),
      infra.sqs.depth(infra.dlqUrl),
      scrapeWorker(infra.env.HTTP_PORT!, deps.workerMetrics, deps.signal),
    ]);
    const t = Date.now();
    const accepted = infra.validator.stats().accepted;
    samples.push([t, accepted]);
    while (samples.length > 2 && t - samples[0]![0] > 2000) samples.shift();
    const [t0, a0] = samples[0]!;
    return {
      phase,
      elapsedSeconds: (t - deps.startedAt) / 1000,
      sent: deps.sent(),
      received: infra.proxy.stats().distinctReceived,
      accepted,
      valid: set.valid,
      rejected: infra.validator.stats().rejected,
      deadLettered: dlq.visible + dlq.inFlight,
      poison: set.poison,
      inFlight: main.inFlight,
      msgPerSecond: t > t0 ? ((accepted - a0) * 1000) / (t - t0) : 0,
      kills,
      errors: downstreamErrors(infra),
      tableFaults,
      ...deps.workerMetrics.counts(),
    };
  };
}
