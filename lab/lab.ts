/**
 * The embedded lab (README): fauxqs in process behind a counting
 * proxy, the enrichment and validator simulators, the generator, and the
 * worker as a child process started the way an operator starts it. runLab()
 * waits until every message has its final outcome, stops the worker with
 * SIGTERM, and judges the run: nothing lost, nothing submitted twice (beyond
 * what a chaos kill stranded), nothing valid rejected, every poison body in
 * the DLQ with its reason. The parts: lab/infra.ts (the services and their
 * teardown), lab/worker_slots.ts, lab/run_loop.ts, lab/chaos.ts, lab/summary.ts
 * and lab/judge.ts (the verdict).
 */
import { buildDataset } from "./dataset.ts";
import { generateMessages, type MessageSet, sendMessages, withoutHot } from "./generator.ts";
import { planWrapping, publishAll, putObjects, splitForSending } from "./wrapping.ts";
import { sleep } from "../src/lib/clock.ts";
import { WorkerMetricsTracker } from "./worker_metrics.ts";
import { type Cleanups, type LabInfra, startInfra, teardown } from "./infra.ts";
import { createChaos, sigtermPhaseHook } from "./chaos.ts";
import { createProgress, downstreamErrors } from "./progress.ts";
import { watchRun } from "./run_loop.ts";
import { summarize, type SummaryContext } from "./summary.ts";
import { REPO_ROOT, startWorkers, stopWorkers } from "./worker_slots.ts";
import type { LabOptions, LabProgress, LabSummary } from "./lab_types.ts";
import { missingTableName } from "./infra.ts";
import { tableMissingProblems, watchTableMissing } from "./table_missing.ts";
import { startTraceReceiver, traceProducers, traceSummary } from "./trace_check.ts";

export type { Scenario } from "./scenario.ts";
export {
  type ChaosOptions,
  DEFAULT_CHAOS,
  type LabOptions,
  type LabProgress,
  type LabSummary,
} from "./lab_types.ts";
export { percentile, steadyRate } from "./summary.ts";
export { readPeakRssKb } from "./chaos.ts";

/** Runs one lab: see the module comment. Never throws for a worker failure; the summary says what went wrong. */
export async function runLab(options: LabOptions): Promise<LabSummary> {
  const startedAt = Date.now();
  const dataset = buildDataset({ users: options.users, seed: options.seed });
  const generated = generateMessages({
    dataset,
    messages: options.messages,
    seed: options.seed,
    poisonShare: options.poisonShare,
    duplicateShare: options.duplicateShare,
    unknownShare: options.unknownShare,
    hotShare: options.hotShare,
    ...(options.hotUsers !== undefined ? { hotUsers: options.hotUsers } : {}),
    fifo: options.fifo ?? false,
    ...(options.fifoGroups ? { groups: options.fifoGroups } : {}),
  });
  const set = options.withoutHot ? withoutHot(generated) : generated;
  if (options.trace || options.producerTraced) traceProducers(set.outgoing);
  const runsDir = `${REPO_ROOT}lab/.runs`;
  await Deno.mkdir(runsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const logFile = `${runsDir}/${stamp}-${options.scenario}-seed${options.seed}-${Deno.pid}.log`;

  const cleanups: Cleanups = [];
  try {
    const infra = await startInfra(options, dataset, set, cleanups);
    const sending = createSending(options, infra, set);
    cleanups.push(() => sending.stop());
    const workerMetrics = new WorkerMetricsTracker();
    const ctx: SummaryContext = {
      options,
      set,
      infra,
      workerMetrics,
      downstreamErrors: () => downstreamErrors(infra),
      logFile,
    };
    const progress = createProgress({
      infra,
      set,
      workerMetrics,
      startedAt,
      sent: () => sending.sent,
      signal: options.signal,
    });
    if (options.infraOnly) return await runInfraOnly(options, ctx, sending, progress);
    if (options.tableMissing) return await runTableMissing(options, ctx, sending, cleanups);
    return await runWithWorkers(options, ctx, sending, progress, startedAt, cleanups);
  } finally {
    await teardown(cleanups);
  }
}

type Progress = (phase: LabProgress["phase"], kills: number) => Promise<LabProgress>;

/** The generator's sending, and what the run loop needs to know of it. */
interface Sending {
  sent: number;
  error: unknown;
  done: boolean;
  start: () => Promise<unknown>;
  /** ends the sending, if it runs, and waits for it: nothing may send once the services close */
  stop: () => Promise<void>;
}

function createSending(options: LabOptions, infra: LabInfra, set: MessageSet): Sending {
  const ending = new AbortController();
  let running: Promise<unknown> = Promise.resolve();
  const signal = options.signal ? AbortSignal.any([options.signal, ending.signal]) : ending.signal;
  let [queued, published] = [0, 0];
  const count = () => (sending.sent = queued + published);
  const sending: Sending = {
    sent: 0,
    error: undefined,
    done: false,
    start: () =>
      running = sendAll(options, infra, set, signal, {
        queued: (n) => {
          queued = n;
          count();
        },
        published: (n) => {
          published = n;
          count();
        },
      }).then(
        () => (sending.done = true),
        (err) => {
          sending.error = err;
          sending.done = true;
        },
      ),
    stop: async () => {
      ending.abort();
      await running;
    },
  };
  return sending;
}

/**
 * The generator's messages to the queue, and with `--envelopes`/`--pointers` the wrapped ones: the
 * objects put first, the enveloped ones published to the topic beside the queue's sending.
 */
async function sendAll(
  options: LabOptions,
  infra: LabInfra,
  set: MessageSet,
  signal: AbortSignal,
  onSent: { queued: (n: number) => void; published: (n: number) => void },
): Promise<void> {
  const payloads = infra.payloads;
  const plan = payloads
    ? planWrapping(set.outgoing, {
      envelopes: options.envelopeShare ?? 0,
      pointers: options.pointerShare ?? 0,
      seed: options.seed,
    })
    : [];
  if (payloads) await putObjects(payloads.admin, plan, signal);
  const { queue, topic } = payloads
    ? splitForSending(set.outgoing, plan)
    : { queue: set.outgoing, topic: [] };
  await Promise.all([
    sendMessages({
      sqs: infra.sqs,
      queueUrl: infra.queueUrl,
      outgoing: queue,
      rate: options.rate,
      onSent: onSent.queued,
      signal,
    }),
    payloads && topic.length > 0
      ? publishAll(payloads.admin, payloads.topicArn, topic, onSent.published, signal)
      : undefined,
  ]);
}

/** `--infra-only`: the services run until the signal; the user starts the worker. */
async function runInfraOnly(
  options: LabOptions,
  ctx: SummaryContext,
  sending: Sending,
  progress: Progress,
): Promise<LabSummary> {
  const sent = sending.start();
  if (options.rate === 0) await sent;
  (options.onInfraReady ?? printEnv)(ctx.infra.env);
  let lastProgress = 0;
  while (!options.signal?.aborted) {
    await sleep(200, options.signal).catch(() => undefined);
    if (options.onProgress && Date.now() - lastProgress >= 500) {
      lastProgress = Date.now();
      options.onProgress(await progress("infra", 0));
    }
  }
  await sent;
  // The worker is not ours to watch here: the run ends at its last acceptance.
  const lastAccept = Math.max(0, ...ctx.infra.validator.acceptedAt.values());
  return await summarize(ctx, {
    earlier: [],
    killedInFlight: 0,
    kills: 0,
    peakRssKb: 0,
    doneAt: lastAccept || Date.now(),
  });
}

/** The run proper: workers, chaos, the watch, the SIGTERM stop, the SIGTERM phase, the summary. */
async function runWithWorkers(
  options: LabOptions,
  ctx: SummaryContext,
  sending: Sending,
  progress: Progress,
  startedAt: number,
  cleanups: Cleanups,
): Promise<LabSummary> {
  const { infra, set } = ctx;
  const chaosOptions = options.chaos ?? {};
  const problems: string[] = [];
  const tracing = options.trace ? startTraceReceiver() : undefined;
  if (tracing) {
    Object.assign(infra.env, tracing.env);
    cleanups.push(() => tracing.receiver.close());
  }
  (options.onInfraReady ?? (() => {}))(infra.env);
  let sent: Promise<unknown> = Promise.resolve();
  if (options.rate === 0) {
    options.onProgress?.({ ...(await progress("preloading", 0)) });
    await sending.start();
    if (sending.error) throw sending.error;
  }
  const fleet = await startWorkers(options, infra, ctx.logFile, cleanups);
  if (options.rate > 0) sent = sending.start();
  const chaos = createChaos({
    chaos: chaosOptions,
    seed: options.seed,
    infra,
    slots: fleet.slots,
    log: fleet.log,
    restart: fleet.start,
  });
  const watched = await watchRun({
    options,
    infra,
    set,
    fleet,
    chaos,
    progress,
    sending: { done: () => sending.done, error: () => sending.error },
    startedAt,
    timeoutMs: (options.timeoutSeconds ?? 120 + options.messages * 0.04) * 1000,
    problems,
  });

  // Stop the worker the way systemd does, and check it drains and exits 0.
  const stopping = tickProgress(options.onProgress, () => progress("stopping", chaos.state.kills));
  const stopped = await stopWorkers(fleet, options, watched.cpuAtFirstReceive, problems)
    .finally(() => stopping.end());
  await sent.catch(() => undefined);
  const doneAt = watched.doneAt ?? Date.now();
  const sigtermPhase = await sigtermPhaseHook(chaosOptions, problems, options.signal, {
    cmd: fleet.cmd,
    cwd: fleet.cwd,
    baseEnv: fleet.baseEnv,
    log: fleet.log,
  });
  const summary = await summarize(ctx, {
    earlier: problems,
    killedInFlight: chaos.state.killedInFlight,
    kills: chaos.state.kills,
    peakRssKb: Math.max(chaos.state.peakRssKb, stopped.peakRssKb),
    doneAt,
    ...(stopped.cpuMs === undefined ? {} : { cpuMs: stopped.cpuMs }),
    slots: fleet.slots,
    onWire: chaos.state.onWire,
    killLog: chaos.state.killLog,
    strandedAtKills: chaos.state.strandedAtKills,
    tableWindows: chaos.state.tableWindows,
  });
  const traced = tracing
    ? { ...summary, traces: traceSummary(tracing.receiver.spans(), set.outgoing) }
    : summary;
  return sigtermPhase ? { ...traced, sigtermPhase } : traced;
}

/**
 * The live line now and then every second until `end`: a stop that takes a while shows its time
 * going on instead of one frozen line.
 */
function tickProgress(
  onProgress: LabOptions["onProgress"],
  next: () => Promise<LabProgress>,
): { end: () => Promise<void> } {
  const ended = new AbortController();
  const loop = (async () => {
    if (!onProgress) return;
    while (!ended.signal.aborted) {
      const p = await next().catch(() => undefined);
      if (p && !ended.signal.aborted) onProgress(p);
      await sleep(1000, ended.signal).catch(() => undefined);
    }
  })();
  return {
    end: async () => {
      ended.abort();
      await loop;
    },
  };
}

/** `--table-missing`: every message preloaded, the workers must stop at startup and touch none. */
async function runTableMissing(
  options: LabOptions,
  ctx: SummaryContext,
  sending: Sending,
  cleanups: Cleanups,
): Promise<LabSummary> {
  (options.onInfraReady ?? (() => {}))(ctx.infra.env);
  await sending.start();
  if (sending.error) throw sending.error;
  const fleet = await startWorkers(options, ctx.infra, ctx.logFile, cleanups);
  const tableMissing = await watchTableMissing(
    fleet.slots,
    ctx.infra,
    missingTableName(ctx.infra.table!.table),
    ctx.set.outgoing.length,
    options.signal,
  );
  const summary = await summarize(ctx, {
    earlier: [],
    killedInFlight: 0,
    kills: 0,
    peakRssKb: 0,
    doneAt: Date.now(),
  });
  // Nothing may be accepted here: the usual verdict does not apply, this one does.
  const problems = [
    ...(options.signal?.aborted ? ["interrupted before the run finished"] : []),
    ...tableMissingProblems(tableMissing),
  ];
  return { ...summary, ok: problems.length === 0, problems, tableMissing };
}

function printEnv(env: Record<string, string>): void {
  for (const [k, v] of Object.entries(env)) console.log(`export ${k}=${shellQuote(v)}`);
}

function shellQuote(v: string): string {
  return /^[A-Za-z0-9_./:@=-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}
