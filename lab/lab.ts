/**
 * The embedded lab (contract section 7): fauxqs in process behind a counting
 * proxy, the enrichment and validator simulators, the generator, and the
 * worker as a child process started the way an operator starts it. runLab()
 * waits until every message has its final outcome, stops the worker with
 * SIGTERM, and judges the run: nothing lost, nothing submitted twice (beyond
 * what a chaos kill stranded), nothing valid rejected, every poison body in
 * the DLQ with its reason.
 */
import { startCommand } from "./start_command.ts";
import { buildApp } from "fauxqs";
import { buildDataset } from "./dataset.ts";
import { startEnrichSim } from "./enrich_sim.ts";
import { generateMessages, sendMessages } from "./generator.ts";
import { createRng, deriveSeed } from "./prng.ts";
import type { Scenario } from "./scenario.ts";
import { createSqsAdmin, type SqsAdmin } from "./sqs_admin.ts";
import { messageIdOf, startSqsProxy } from "./sqs_proxy.ts";
import { processTreeUsage } from "./process_tree.ts";
import { sleep } from "../src/lib/retry.ts";
import { scrapeWorker, WorkerMetricsTracker } from "./worker_metrics.ts";
import { startValidatorSim } from "./validator_sim.ts";
import { createLogSink, spawnWorker } from "./worker_process.ts";
import { runSigtermPhase, type SigtermPhaseSummary } from "./sigterm_phase.ts";
import { spawnDynalite } from "./dynalite.ts";
import {
  onWireAtKill,
  scrapeAccepted,
  type Slot,
  startValidatorFront,
  type WorkerShare,
  workerShares,
} from "./fleet.ts";

export type { Scenario } from "./scenario.ts";

/** Chaos knobs (seed 004's failure-mode experiments). */
export interface ChaosOptions {
  /** probability per second of SIGKILLing the worker (it is restarted) */
  crashRate?: number;
  /** SIGKILL the worker once, after the proxy has seen this many messages received */
  crashAfterReceive?: number;
  /** every Nth enrichment request is delayed `slowSeconds` */
  slowEvery?: number;
  /** delay of those requests; longer than the 30 s visibility timeout by default (35) */
  slowSeconds?: number;
  /** the SQS proxy fails for this many seconds, once, when a quarter of the messages are accepted */
  sqsOutageSeconds?: number;
  /** every Nth first submission is answered with a redirect (never to be followed) */
  redirectEvery?: number;
  /** after the run, a SIGTERM phase (lab/sigterm_phase.ts) with this many messages; 0 = none */
  sigtermPhaseMessages?: number;
}

/** The mix `--chaos` turns on. */
export const DEFAULT_CHAOS: Readonly<Required<ChaosOptions>> = {
  crashRate: 0.05,
  crashAfterReceive: 0, // set from the message count by the caller: a third of the messages
  slowEvery: 25,
  slowSeconds: 35,
  sqsOutageSeconds: 5,
  redirectEvery: 20,
  sigtermPhaseMessages: 20,
};

export interface LabOptions {
  scenario: Scenario;
  /** distinct messages (valid + poison), producer duplicates come on top */
  messages: number;
  /** msg/s for the generator, 0 = preload everything before the worker starts */
  rate: number;
  /** known users, 2000 */
  users: number;
  /** 1 */
  seed: number;
  /** 0.02 */
  poisonShare: number;
  /** 0.01 producer duplicates */
  duplicateShare: number;
  /** 0.01 */
  unknownShare: number;
  /** 0.2: share of messages on the 1% hottest users */
  hotShare: number;
  /** the worker command; default `deno task start` (startCommand()); env vars are added by the lab */
  workerCmd?: string[];
  /** extra env vars for the worker (override the lab's) */
  workerEnv?: Record<string, string>;
  /** working directory of the worker, default the repository root */
  workerCwd?: string;
  /** enrichment and validator answer instantly (the lab's ceiling) */
  instant?: boolean;
  /** start the services, preload, report the env vars, and wait for `signal` instead of starting a worker */
  infraOnly?: boolean;
  json?: boolean;
  /** give up after this long; default 120 s + 40 ms per message */
  timeoutSeconds?: number;
  chaos?: ChaosOptions;
  onProgress?: (p: LabProgress) => void;
  /** called once the services run, with the env vars a worker needs (infra-only prints them) */
  onInfraReady?: (env: Record<string, string>) => void;
  /** ends the run early (Ctrl-C); in infra-only mode the only way to end it */
  signal?: AbortSignal;
  /** how long the worker may drain after SIGTERM before SIGKILL, default 30 s */
  stopTimeoutSeconds?: number;
  /** worker processes on the one queue (`--workers N`); given, each gets a counting validator front */
  workers?: number;
  /** start dynalite and run the workers with IDEMPOTENCY_TABLE (`--table`) */
  table?: boolean;
}

export interface LabProgress {
  phase: "preloading" | "running" | "stopping" | "infra";
  elapsedSeconds: number;
  sent: number;
  /** distinct SQS messages received by the worker */
  received: number;
  /** valid messages accepted by the validator (first acceptances) */
  accepted: number;
  valid: number;
  rejected: number;
  /** messages in the DLQ */
  deadLettered: number;
  poison: number;
  /** main queue messages not visible (held by the worker) */
  inFlight: number;
  /** acceptances per second over the last ~2 s */
  msgPerSecond: number;
  /** worker kills so far (chaos) */
  kills: number;
  /** 429/5xx answers and timeouts the simulators gave so far */
  errors: number;
  /** the worker's in-process retries (sluice_retries_total, summed over restarts) */
  retries: number;
  /** circuit breakers seen opening (sluice_breaker_state turning 2) */
  breakerOpens: number;
}

export interface LabSummary {
  scenario: Scenario;
  messages: number;
  valid: number;
  poison: number;
  producerDuplicates: number;
  accepted: number;
  duplicateSubmissions: number;
  wronglyRejected: number;
  lost: number;
  deadLettered: number;
  poisonInDlq: number;
  leftInQueue: number;
  killedInFlight: number;
  /** first receive to the last final outcome */
  durationSeconds: number;
  /** (accepted + poison in the DLQ) / durationSeconds */
  msgPerSecond: number;
  /** acceptances between the 10th and the 90th percentile acceptance time ÷ that span (warm-up and tail left out) */
  steadyMsgPerSecond: number;
  /** user + system CPU of the worker's process tree from its first receive to the end of the run, ms; 0 when unknown (a chaos kill, no /proc) */
  workerCpuMs: number;
  /** workerCpuMs per settled message (accepted + poison in the DLQ), 0 when unknown */
  cpuMsPerMessage: number;
  /** enrichment requests that arrived inside a brownout window */
  enrichBrownoutRequests: number;
  /** receive-to-accept, first receive to first acceptance, valid messages */
  p50Ms: number;
  p99Ms: number;
  sqsRequests: number;
  sqsRequestsPerMessage: number;
  /** enrichment requests (health checks excluded) */
  enrichRequests: number;
  enrichRequestsPerMessage: number;
  /** ids asked for (single and batch) per valid message: below 1 means the cache works */
  enrichIdsPerMessage: number;
  peakRssMb: number;
  ok: boolean;
  problems: string[];
  /** lab additions beyond the spec: */
  sqsRequestsByAction: Record<string, number>;
  rejectedByReason: Record<string, number>;
  kills: number;
  /** poison bodies found in the DLQ more than once (allowed up to killedInFlight) */
  dlqExtraCopies: number;
  /** the worker's stdout/stderr */
  logFile: string;
  /** the `--chaos` SIGTERM phase, when it ran */
  sigtermPhase?: SigtermPhaseSummary;
  /** 429/5xx answers and timeouts from the enrichment API and the validator simulators */
  downstreamErrors: number;
  /** the worker's in-process retries */
  retries: number;
  /** circuit breakers seen opening */
  breakerOpens: number;
  /** whether the workers shared an idempotency table */
  table?: boolean;
  /** per worker slot, when the run had validator fronts (`--workers`) */
  workers?: WorkerShare[];
  /** the killed workers' submissions on the wire at their kills (sent, acceptance not recorded) */
  onWireAtKills?: number;
  /** DynamoDB requests by action (the lab's counting, also the killed workers' and the judge's reads) */
  tableRequests?: Record<string, number>;
}

const REPO_ROOT = new URL("../", import.meta.url).pathname;
const MAX_RECEIVE_COUNT = 3;

/** Env var names the worker reads (contract section 4) that must not leak from the caller's shell. */
const WORKER_ENV_PREFIXES = [
  "AWS_",
  "SQS_",
  "DLQ_",
  "ENRICH_",
  "VALIDATOR_",
  "DELETE_ON_",
  "UNKNOWN_USER_",
  "MAX_IN_FLIGHT",
  "DEDUP_",
  "CACHE_",
  "HTTP_",
  "SHUTDOWN_",
  "LOG_",
];

/** Runs one lab: see the module comment. Never throws for a worker failure; the summary says what went wrong. */
export async function runLab(options: LabOptions): Promise<LabSummary> {
  const chaos = options.chaos ?? {};
  const problems: string[] = [];
  const startedAt = Date.now();
  const timeoutMs = (options.timeoutSeconds ?? 120 + options.messages * 0.04) * 1000;
  const dataset = buildDataset({ users: options.users, seed: options.seed });
  const set = generateMessages({
    dataset,
    messages: options.messages,
    seed: options.seed,
    poisonShare: options.poisonShare,
    duplicateShare: options.duplicateShare,
    unknownShare: options.unknownShare,
    hotShare: options.hotShare,
  });

  const runsDir = `${REPO_ROOT}lab/.runs`;
  await Deno.mkdir(runsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const logFile = `${runsDir}/${stamp}-${options.scenario}-seed${options.seed}-${Deno.pid}.log`;

  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  try {
    const fauxqs = buildApp({ logger: false });
    await fauxqs.listen({ port: 0, host: "127.0.0.1" });
    cleanups.push(() => fauxqs.close());
    const address = fauxqs.server.address();
    if (address === null || typeof address === "string") {
      throw new Error("fauxqs did not bind a port");
    }
    const sqs = createSqsAdmin({ endpoint: `http://127.0.0.1:${address.port}` });
    const dlqName = "sluice-lab-dlq";
    const dlqUrl = await sqs.createQueue(dlqName);
    const queueUrl = await sqs.createQueue("sluice-lab", {
      VisibilityTimeout: "30",
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: `arn:aws:sqs:us-east-1:000000000000:${dlqName}`,
        maxReceiveCount: MAX_RECEIVE_COUNT,
      }),
    });

    const proxy = startSqsProxy({ target: `http://127.0.0.1:${address.port}` });
    cleanups.push(() => proxy.close());
    const enrich = startEnrichSim({
      dataset,
      scenario: options.scenario,
      seed: options.seed,
      instant: options.instant ?? false,
      slowEvery: chaos.slowEvery ?? 0,
      slowMs: (chaos.slowSeconds ?? DEFAULT_CHAOS.slowSeconds) * 1000,
    });
    cleanups.push(() => enrich.close());
    const validator = startValidatorSim({
      dataset,
      expected: set.expected,
      scenario: options.scenario,
      seed: options.seed,
      instant: options.instant ?? false,
      redirectEvery: chaos.redirectEvery ?? 0,
    });
    cleanups.push(() => validator.close());
    const table = options.table ? await spawnDynalite() : undefined;
    if (table) cleanups.push(() => table.close());

    const env: Record<string, string> = {
      SQS_QUEUE_URL: queueUrl,
      AWS_ENDPOINT_URL_SQS: proxy.url,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "lab",
      AWS_SECRET_ACCESS_KEY: "lab-secret",
      ENRICH_URL: enrich.url,
      VALIDATOR_URL: validator.url,
      // Infra-only: the README's curl localhost:9400 must work for the worker the user starts.
      HTTP_PORT: options.infraOnly ? (Deno.env.get("HTTP_PORT") || "9400") : String(freePort()),
      ...(options.infraOnly ? { AWS_DEFAULT_REGION: "us-east-1" } : {}),
      // The user's LOG_LEVEL wins; infra-only prints none, so their shell keeps theirs.
      ...(options.infraOnly ? {} : { LOG_LEVEL: Deno.env.get("LOG_LEVEL") || "warn" }),
      ...(table ? { IDEMPOTENCY_TABLE: table.table, AWS_ENDPOINT_URL_DYNAMODB: table.url } : {}),
      ...options.workerEnv,
    };

    // Counters the monitor and the summary share.
    let sent = 0;
    let sendError: unknown;
    let sendingDone = false;
    const startSending = () =>
      sendMessages({
        sqs,
        queueUrl,
        outgoing: set.outgoing,
        rate: options.rate,
        onSent: (n) => (sent = n),
        ...(options.signal ? { signal: options.signal } : {}),
      }).then(
        () => (sendingDone = true),
        (err) => {
          sendError = err;
          sendingDone = true;
        },
      );

    const samples: Array<[number, number]> = [];
    const workerMetrics = new WorkerMetricsTracker();
    const downstreamErrors = () =>
      Object.entries(enrich.stats().byStatus)
        .filter(([status]) => !(Number(status) < 429))
        .reduce((n, [, count]) => n + count, 0) + validator.stats().errors5xx;
    const progress = async (phase: LabProgress["phase"], kills: number): Promise<LabProgress> => {
      const [main, dlq] = await Promise.all([
        sqs.depth(queueUrl),
        sqs.depth(dlqUrl),
        scrapeWorker(env.HTTP_PORT!, workerMetrics, options.signal),
      ]);
      const t = Date.now();
      const accepted = validator.stats().accepted;
      samples.push([t, accepted]);
      while (samples.length > 2 && t - samples[0]![0] > 2000) samples.shift();
      const [t0, a0] = samples[0]!;
      return {
        phase,
        elapsedSeconds: (t - startedAt) / 1000,
        sent,
        received: proxy.stats().distinctReceived,
        accepted,
        valid: set.valid,
        rejected: validator.stats().rejected,
        deadLettered: dlq.visible + dlq.inFlight,
        poison: set.poison,
        inFlight: main.inFlight,
        msgPerSecond: t > t0 ? ((accepted - a0) * 1000) / (t - t0) : 0,
        kills,
        errors: downstreamErrors(),
        ...workerMetrics.counts(),
      };
    };

    const summarize = async (
      run: {
        killedInFlight: number;
        kills: number;
        peakRssKb: number;
        doneAt: number;
        cpuMs?: number;
        slots?: Slot[];
        onWire?: number;
      },
    ): Promise<LabSummary> => {
      const vStats = validator.stats();
      let lost = 0;
      const latencies: number[] = [];
      for (const id of set.expected.keys()) {
        const acceptedAt = validator.acceptedAt.get(id);
        if (acceptedAt === undefined) {
          lost++;
          continue;
        }
        const receivedAt = proxy.firstReceive.get(id);
        if (receivedAt !== undefined) latencies.push(acceptedAt - receivedAt);
      }
      latencies.sort((a, b) => a - b);
      const wrongIds = new Set(
        validator.rejections.flatMap((
          r,
        ) => (r.messageId && set.expected.has(r.messageId) ? [r.messageId] : [])),
      );
      const notValid = validator.rejections.filter((r) =>
        !(r.messageId && set.expected.has(r.messageId))
      );
      const dlq = await readDlq(sqs, dlqUrl);
      // Group DLQ copies by body: a kill between the DLQ send and the delete legitimately sends twice.
      const copies = new Map<string, Array<Record<string, string>>>();
      for (const m of dlq) copies.set(m.body, [...(copies.get(m.body) ?? []), m.attributes]);
      let poisonInDlq = 0;
      let withoutAttributes = 0;
      let extraCopies = 0;
      for (const body of new Set(set.poisonBodies)) {
        const found = copies.get(body) ?? [];
        copies.delete(body);
        if (found.length === 0) continue;
        extraCopies += found.length - 1;
        if (found.some((a) => a.sluice_error && a.sluice_reason)) poisonInDlq++;
        else withoutAttributes++;
      }
      // Whatever is left is not a poison body: most likely a valid message dead-lettered.
      const foreignBodies = [...copies.keys()];
      const foreign = [...copies.values()].reduce((n, c) => n + c.length, 0);
      const main = await sqs.depth(queueUrl);
      const leftInQueue = main.visible + main.inFlight + main.delayed;
      const pStats = proxy.stats();
      const eStats = enrich.stats();
      const enrichRequests = eStats.requests - eStats.healthRequests;
      const firstReceive = Math.min(...proxy.firstReceive.values(), run.doneAt);
      const durationSeconds = Math.max(0.001, (run.doneAt - firstReceive) / 1000);
      const duplicateSubmissions = vStats.duplicates;

      if (lost > 0) problems.push(`${lost} valid messages were never accepted`);
      // With the table a kill may cost only the submissions it caught on the wire.
      const allowed = table ? run.onWire ?? 0 : run.killedInFlight;
      if (duplicateSubmissions > allowed) {
        problems.push(
          `${duplicateSubmissions} duplicate submissions` +
            (allowed
              ? ` (more than the ${allowed} ${table ? "on the wire" : "in flight"} at kills)`
              : ""),
        );
      }
      if (wrongIds.size > 0) {
        const sample = validator.rejections.find((r) => r.messageId && wrongIds.has(r.messageId));
        problems.push(
          `${wrongIds.size} valid messages were rejected by the validator (e.g. ${sample?.messageId}: ${sample?.reason}: ${sample?.detail})`,
        );
      }
      if (notValid.length > 0) {
        problems.push(
          `${notValid.length} submissions were not valid messages (e.g. ${notValid[0]!.reason}: ${
            notValid[0]!.detail
          })`,
        );
      }
      if (poisonInDlq < set.poison) {
        problems.push(
          `${poisonInDlq} of ${set.poison} poison messages are in the DLQ with sluice_error/sluice_reason` +
            (withoutAttributes
              ? ` (${withoutAttributes} more without them: redriven by SQS, not dead-lettered by the worker)`
              : ""),
        );
      }
      if (foreign > 0) {
        const ids = foreignBodies.map((b) => messageIdOf(b) ?? b.slice(0, 40)).slice(0, 3);
        problems.push(
          `${foreign} DLQ messages are not poison bodies (e.g. ${
            ids.join(", ")
          }): valid messages dead-lettered`,
        );
      }
      if (extraCopies > run.killedInFlight) {
        problems.push(`${extraCopies} poison messages were dead-lettered more than once`);
      }
      if (leftInQueue > 0) problems.push(`${leftInQueue} messages left in the queue`);
      if (vStats.followedRedirects > 0) {
        problems.push(`${vStats.followedRedirects} requests followed a validator redirect`);
      }

      const settled = set.valid - lost + poisonInDlq;
      const cpuMs = run.kills === 0 ? run.cpuMs ?? 0 : 0;
      return {
        scenario: options.scenario,
        messages: options.messages,
        valid: set.valid,
        poison: set.poison,
        producerDuplicates: set.producerDuplicates,
        accepted: vStats.accepted,
        duplicateSubmissions,
        wronglyRejected: wrongIds.size,
        lost,
        deadLettered: dlq.length,
        poisonInDlq,
        leftInQueue,
        killedInFlight: run.killedInFlight,
        durationSeconds: round(durationSeconds, 3),
        msgPerSecond: round(settled / durationSeconds, 1),
        steadyMsgPerSecond: round(steadyRate([...validator.acceptedAt.values()]), 1),
        workerCpuMs: round(cpuMs, 0),
        cpuMsPerMessage: round(cpuMs / Math.max(1, settled), 4),
        enrichBrownoutRequests: eStats.brownoutRequests,
        p50Ms: percentile(latencies, 0.5),
        p99Ms: percentile(latencies, 0.99),
        sqsRequests: pStats.requests,
        sqsRequestsPerMessage: round(pStats.requests / Math.max(1, options.messages), 3),
        enrichRequests,
        enrichRequestsPerMessage: round(enrichRequests / Math.max(1, set.valid), 3),
        enrichIdsPerMessage: round(eStats.idsRequested / Math.max(1, set.valid), 3),
        peakRssMb: round(run.peakRssKb / 1024, 1),
        ok: problems.length === 0,
        problems,
        sqsRequestsByAction: pStats.byAction,
        rejectedByReason: vStats.rejectedByReason,
        kills: run.kills,
        dlqExtraCopies: extraCopies,
        logFile: options.infraOnly ? "" : logFile,
        downstreamErrors: downstreamErrors(),
        ...workerMetrics.counts(),
        table: table !== undefined,
        workers: workerShares(run.slots ?? [], durationSeconds),
        onWireAtKills: run.onWire ?? 0,
        ...(table ? { tableRequests: await table.requests() } : {}),
      };
    };

    if (options.infraOnly) {
      const sending = startSending();
      if (options.rate === 0) await sending;
      (options.onInfraReady ?? printEnv)(env);
      let lastProgress = 0;
      while (!options.signal?.aborted) {
        await sleep(200, options.signal).catch(() => undefined);
        if (options.onProgress && Date.now() - lastProgress >= 500) {
          lastProgress = Date.now();
          options.onProgress(await progress("infra", 0));
        }
      }
      await sending;
      // The worker is not ours to watch here: the run ends at its last acceptance.
      const lastAccept = Math.max(0, ...validator.acceptedAt.values());
      return await summarize({
        killedInFlight: 0,
        kills: 0,
        peakRssKb: 0,
        doneAt: lastAccept || Date.now(),
      });
    }

    (options.onInfraReady ?? (() => {}))(env);
    let sending: Promise<unknown> = Promise.resolve();
    if (options.rate === 0) {
      options.onProgress?.({ ...(await progress("preloading", 0)) });
      await startSending();
      if (sendError) throw sendError;
    }

    const logHandle = await Deno.open(logFile, { write: true, create: true, truncate: true });
    cleanups.push(() => logHandle.close());
    const log = createLogSink(logHandle);
    await log.write(
      `# sluice lab ${
        new Date().toISOString()
      } scenario=${options.scenario} messages=${options.messages} seed=${options.seed}\n` +
        Object.entries(env).map(([k, v]) => `# ${k}=${k.includes("SECRET") ? "***" : v}`).join(
          "\n",
        ) + "\n",
    );
    const workerCmd = options.workerCmd ?? startCommand();
    const baseEnv = Object.fromEntries(
      Object.entries(Deno.env.toObject()).filter(([k]) =>
        !WORKER_ENV_PREFIXES.some((p) => k.startsWith(p))
      ),
    );
    // Fronts (an extra hop per submission in the lab process) only where a kill needs them to
    // count what was on the wire; otherwise the workers' own metrics give the per-worker split.
    const killing = (chaos.crashRate ?? 0) > 0 || (chaos.crashAfterReceive ?? 0) > 0;
    const fronted = (options.workers !== undefined || table !== undefined) && killing;
    const start = (slot: Omit<Slot, "process">) =>
      spawnWorker({
        cmd: workerCmd,
        cwd: options.workerCwd ?? REPO_ROOT,
        env: {
          ...baseEnv,
          ...env,
          ...(slot.front ? { VALIDATOR_URL: slot.front.url } : {}),
          HTTP_PORT: String(slot.port),
        },
        log,
      });
    const slots: Slot[] = [];
    for (let index = 0; index < (options.workers ?? 1); index++) {
      const front = fronted ? startValidatorFront(validator.url) : undefined;
      if (front) cleanups.push(() => front.close());
      const port = index === 0 ? Number(env.HTTP_PORT) : freePort();
      const slot = { index, front, kills: 0, port };
      slots.push({ ...slot, process: start(slot) });
    }
    // On an error path no worker may outlive the lab (nor write to a closed log).
    cleanups.push(async () => {
      for (const slot of slots) if (!slot.process.exited) await slot.process.kill("SIGKILL");
    });
    if (options.rate > 0) sending = startSending();

    const chaosRng = createRng(deriveSeed(options.seed, "chaos"));
    let kills = 0;
    let killedInFlight = 0;
    let onWire = 0;
    let peakRssKb = 0;
    let crashAfterReceiveDone = !(chaos.crashAfterReceive && chaos.crashAfterReceive > 0);
    let outageDone = !(chaos.sqsOutageSeconds && chaos.sqsOutageSeconds > 0);
    let lastTick = Date.now();
    let lastProgress = 0;
    let doneAt: number | undefined;
    // The worker tree's CPU at its first receive, interpolated between the samples around it.
    let cpuAtFirstReceive: number | undefined;
    let cpuBefore = { t: Date.now(), cpuMs: 0 };

    const kill = async (why: string) => {
      // One worker's seed draws only in a fleet: a single worker's chaos replays as before.
      const slot = slots[slots.length > 1 ? chaosRng.int(0, slots.length - 1) : 0]!;
      peakRssKb = Math.max(peakRssKb, await readPeakRssKb(slot.process.pid));
      const stranded = proxy.inFlight();
      killedInFlight += stranded;
      kills++;
      slot.kills++;
      await slot.process.kill("SIGKILL");
      // Counted after the exit (a dead worker records nothing more) and a moment more, so the
      // requests it wrote just before dying have reached the front.
      await sleep(100);
      const wire = slot.front
        ? await onWireAtKill(
          slot.front,
          table && { client: table.client, name: table.table },
          Date.now(),
        )
        : 0;
      onWire += wire;
      await log.write(
        `# lab: SIGKILL worker ${
          slot.index + 1
        } (${why}); ${stranded} messages in flight, ${wire} submissions on the wire\n`,
      );
      await sleep(200);
      slot.process = start(slot);
    };

    while (true) {
      await sleep(100);
      if (cpuAtFirstReceive === undefined && kills === 0) {
        const cpu = { t: Date.now(), cpuMs: (await processTreeUsage(slots[0]!.process.pid)).cpuMs };
        if (proxy.firstReceive.size > 0) {
          const first = Math.min(...proxy.firstReceive.values());
          const share = Math.max(0, Math.min(1, (first - cpuBefore.t) / (cpu.t - cpuBefore.t)));
          cpuAtFirstReceive = cpuBefore.cpuMs + share * (cpu.cpuMs - cpuBefore.cpuMs);
        } else cpuBefore = cpu;
      }
      const now = Date.now();
      if (options.signal?.aborted) {
        problems.push("interrupted before the run finished");
        break;
      }
      if (now - startedAt > timeoutMs) {
        problems.push(`timed out after ${Math.round(timeoutMs / 1000)} s`);
        break;
      }
      const worker = slots.find((slot) => slot.process.exited)?.process;
      if (worker) {
        const status = await worker.status;
        problems.push(
          `the worker exited on its own (code ${status.code}${
            status.signal ? `, ${status.signal}` : ""
          }) ` +
            `before the run finished; last output: ${
              worker.tail().slice(-3).join(" | ") || "(none)"
            }`,
        );
        break;
      }
      if (sendError) {
        problems.push(`sending failed: ${sendError}`);
        break;
      }
      const accepted = validator.stats().accepted;
      if (!outageDone && accepted >= set.valid / 4) {
        outageDone = true;
        proxy.startOutage(chaos.sqsOutageSeconds! * 1000);
        await log.write(`# lab: SQS outage for ${chaos.sqsOutageSeconds} s\n`);
      }
      if (!crashAfterReceiveDone && proxy.stats().messagesReceived >= chaos.crashAfterReceive!) {
        crashAfterReceiveDone = true;
        await kill(`after ${chaos.crashAfterReceive} receives`);
        continue;
      }
      if (chaos.crashRate && now - lastTick >= 1000) {
        lastTick = now;
        if (chaosRng.chance(chaos.crashRate)) {
          await kill(`crash rate ${chaos.crashRate}/s`);
          continue;
        }
      }
      if (sendingDone && accepted >= set.valid) {
        const [main, dlq] = await Promise.all([sqs.depth(queueUrl), sqs.depth(dlqUrl)]);
        if (
          main.visible + main.inFlight + main.delayed === 0 &&
          dlq.visible + dlq.inFlight >= set.poison
        ) {
          doneAt = Date.now();
          break;
        }
      }
      if (options.onProgress && now - lastProgress >= 500) {
        lastProgress = now;
        options.onProgress(await progress("running", kills));
      }
    }

    // Stop the worker the way systemd does, and check it drains and exits 0.
    if (options.onProgress) options.onProgress(await progress("stopping", kills));
    let cpuMs: number | undefined;
    if (options.workers !== undefined && !fronted) {
      for (const slot of slots) slot.acceptedByMetrics = await scrapeAccepted(slot.port);
    }
    await Promise.all(slots.map(async ({ process: worker }, index) => {
      if (worker.exited) return;
      const usage = await processTreeUsage(worker.pid);
      peakRssKb = Math.max(peakRssKb, usage.peakRssKb);
      // CPU per message is the first worker's (the bench runs one).
      if (index === 0 && cpuAtFirstReceive !== undefined) cpuMs = usage.cpuMs - cpuAtFirstReceive;
      const status = await worker.stop(options.stopTimeoutSeconds ?? 30);
      if (status.forced) {
        problems.push(
          `the worker did not exit within ${options.stopTimeoutSeconds ?? 30} s of SIGTERM`,
        );
      } else if (status.code !== 0) {
        problems.push(`the worker exited with code ${status.code} after SIGTERM (expected 0)`);
      }
    }));
    await sending.catch(() => undefined);
    const doneAtMain = doneAt ?? Date.now();
    let sigtermPhase: SigtermPhaseSummary | undefined;
    if (chaos.sigtermPhaseMessages && problems.length === 0 && !options.signal?.aborted) {
      sigtermPhase = await runSigtermPhase({
        cmd: workerCmd,
        cwd: options.workerCwd ?? REPO_ROOT,
        baseEnv,
        log,
        messages: chaos.sigtermPhaseMessages,
      });
      problems.push(...sigtermPhase.problems.map((p) => `SIGTERM phase: ${p}`));
    }
    const summary = await summarize({
      killedInFlight,
      kills,
      peakRssKb,
      doneAt: doneAtMain,
      ...(cpuMs === undefined ? {} : { cpuMs }),
      slots,
      onWire,
    });
    return sigtermPhase ? { ...summary, sigtermPhase } : summary;
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // keep closing the rest
      }
    }
  }
}

/** Every message in the DLQ: body and message attributes (string values). */
async function readDlq(
  sqs: SqsAdmin,
  dlqUrl: string,
): Promise<Array<{ body: string; attributes: Record<string, string> }>> {
  const out: Array<{ body: string; attributes: Record<string, string> }> = [];
  // fauxqs, like SQS, may answer a short batch; stop after a few empty answers in a row.
  for (let empty = 0; empty < 3;) {
    const res = await sqs.call<{ Messages?: Array<Record<string, unknown>> }>("ReceiveMessage", {
      QueueUrl: dlqUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      VisibilityTimeout: 3600,
      MessageAttributeNames: ["All"],
      MessageSystemAttributeNames: ["All"],
    });
    const messages = res.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    for (const m of messages) {
      const attrs: Record<string, string> = {};
      const raw = (m.MessageAttributes ?? {}) as Record<string, { StringValue?: string }>;
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v.StringValue === "string") attrs[k] = v.StringValue;
      }
      out.push({ body: String(m.Body ?? ""), attributes: attrs });
    }
  }
  return out;
}

/** VmHWM (peak resident set) of a process in kB, 0 if unreadable (not Linux, already gone). */
export async function readPeakRssKb(pid: number): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = status.match(/^VmHWM:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A port that was free a moment ago, for the worker's health server. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function printEnv(env: Record<string, string>): void {
  for (const [k, v] of Object.entries(env)) console.log(`export ${k}=${shellQuote(v)}`);
}

function shellQuote(v: string): string {
  return /^[A-Za-z0-9_./:@=-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/**
 * The steady rate of a run from its acceptance times (ms): the acceptances between the 10th and
 * the 90th percentile ÷ the time between them, per second; 0 with fewer than 10 acceptances.
 */
export function steadyRate(acceptedAt: readonly number[]): number {
  if (acceptedAt.length < 10) return 0;
  const sorted = [...acceptedAt].sort((a, b) => a - b);
  const lo = Math.floor(0.1 * (sorted.length - 1));
  const hi = Math.floor(0.9 * (sorted.length - 1));
  const spanMs = sorted[hi]! - sorted[lo]!;
  return spanMs > 0 ? ((hi - lo) * 1000) / spanMs : 0;
}

/** Nearest-rank percentile of sorted values, rounded to 0.1 ms; 0 when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return round(sorted[idx]!, 1);
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
