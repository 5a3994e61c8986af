/**
 * The `--chaos` SIGTERM phase: a SIGTERM while the
 * validator is slow, on its own queue pair whose RedrivePolicy has maxReceiveCount 1,
 * so every message the worker holds is on its last allowed receive. More messages
 * arrive during the drain (a long poll may take them). A second worker then finishes
 * the queue. Judged: the first worker exits 0, nothing valid reaches the DLQ, every
 * message is accepted exactly once. With `tableSlowMs` both workers share an
 * idempotency table (dynalite) behind the fault proxy, every answer that late
 * while the first worker runs; its stop time (SIGTERM → exit) is reported.
 */
import type { SqsAdmin } from "./sqs_admin.ts";
import { type LocalServer, serveLocal, startFauxqs } from "./local_server.ts";
import { sleep } from "../src/lib/clock.ts";
import type { LogSink } from "./worker_process.ts";
import { spawnWorker, type WorkerProcess } from "./worker_process.ts";
import { spawnDynalite, type TableService } from "./dynalite.ts";

export interface SigtermPhaseOptions {
  /** the worker's argv (the lab's `deno task start`) */
  cmd: string[];
  cwd: string;
  /** the environment without the worker's own variables */
  baseEnv: Record<string, string>;
  log: LogSink;
  /** messages before the SIGTERM; as many again arrive during the drain */
  messages: number;
  /** validator delay while the SIGTERM lands, ms; default 3000 */
  slowMs?: number;
  /** the first worker's VALIDATOR_CONCURRENCY; default 2 */
  validatorConcurrency?: number;
  /** with a value: an idempotency table whose every answer is this late (ms) for the first worker */
  tableSlowMs?: number;
  /** ends the phase early (Ctrl-C): its workers are killed */
  signal?: AbortSignal;
}

export interface SigtermPhaseSummary {
  sent: number;
  accepted: number;
  duplicateSubmissions: number;
  lost: number;
  validInDlq: number;
  firstExitCode: number | null;
  /** the first worker's SIGTERM → exit, ms */
  firstStopMs: number;
  /** the settings it ran with */
  validatorMs: number;
  validatorConcurrency: number;
  /** 0: no table */
  tableSlowMs: number;
  /** with the table: its requests by action (both workers') */
  tableRequests?: Record<string, number>;
  problems: string[];
}

/** Runs the phase; never throws for a worker failure, the summary says what went wrong. */
export async function runSigtermPhase(options: SigtermPhaseOptions): Promise<SigtermPhaseSummary> {
  const closing = new AbortController();
  const fauxqs = await startFauxqs();
  const workers: WorkerProcess[] = [];
  let table: TableService | undefined;
  const settings = {
    validatorMs: options.slowMs ?? 3000,
    validatorConcurrency: options.validatorConcurrency ?? 2,
    tableSlowMs: options.tableSlowMs ?? 0,
  };
  const sims = startPhaseSims(settings.validatorMs, closing.signal);
  try {
    if (settings.tableSlowMs > 0) {
      table = await spawnDynalite("sigterm-phase");
      await table.startFault({ kind: "slow", slowMs: settings.tableSlowMs });
    }
    const { queueUrl, dlqUrl } = await fauxqs.admin.createQueueWithDlq(
      "sigterm-phase",
      "sigterm-phase-dlq",
      1,
    );
    const env = { queueUrl, endpoint: fauxqs.endpoint, sims, table, settings };
    const spawn = (slow: boolean) => {
      const worker = spawnWorker({
        cmd: options.cmd,
        cwd: options.cwd,
        env: phaseEnv(options.baseEnv, { ...env, slow }),
        log: options.log,
      });
      workers.push(worker);
      return worker;
    };
    const run = await drivePhase(options, fauxqs.admin, queueUrl, sims, table, spawn);
    const dlq = await fauxqs.admin.depth(dlqUrl);
    const validInDlq = dlq.visible + dlq.inFlight + dlq.delayed;
    const tableRequests = await table?.requests().catch(() => undefined);
    return {
      ...judgePhase(run.ids, sims.accepted, validInDlq, run.firstExitCode, run.problems),
      firstStopMs: run.firstStopMs,
      ...settings,
      ...(tableRequests ? { tableRequests } : {}),
    };
  } finally {
    closing.abort();
    for (const worker of workers) if (!worker.exited) await worker.kill("SIGKILL");
    for (const server of sims.servers) await server.close();
    await table?.close();
    await fauxqs.close();
  }
}

/** The phase's steps: messages, the first worker and its SIGTERM, more messages, the second worker. */
async function drivePhase(
  options: SigtermPhaseOptions,
  sqs: SqsAdmin,
  queueUrl: string,
  sims: PhaseSims,
  table: TableService | undefined,
  spawn: (slow: boolean) => WorkerProcess,
): Promise<
  { ids: string[]; problems: string[]; firstExitCode: number | null; firstStopMs: number }
> {
  const ids = Array.from({ length: options.messages * 2 }, (_, i) => `sigterm-${i}`);
  const send = (batch: string[]) => sendPhaseMessages(sqs, queueUrl, batch);
  const problems: string[] = [];
  const aborted = () => options.signal?.aborted ?? false;
  await options.log.write(`# lab: SIGTERM phase (maxReceiveCount 1, slow validator)\n`);
  await send(ids.slice(0, options.messages));
  const first = spawn(true);
  const deadline = Date.now() + 60_000;
  while (sims.accepted.size < 2 && Date.now() < deadline && !first.exited && !aborted()) {
    await sleep(50);
  }
  const interrupted = { ids, problems: ["interrupted"], firstExitCode: null, firstStopMs: 0 };
  if (aborted()) return interrupted;
  // SIGTERM while submissions are slow and queued; more messages arrive during the drain.
  const sigtermAt = Date.now();
  const stopped = first.stop(60);
  await send(ids.slice(options.messages));
  const status = await stopped;
  const firstStopMs = Date.now() - sigtermAt;
  if (status.forced || status.code !== 0) {
    problems.push(`the first worker exited with ${status.forced ? "SIGKILL" : status.code}`);
  }

  sims.validator.delayMs = 0;
  await table?.endFault();
  const second = spawn(false);
  const end = Date.now() + 120_000;
  while (Date.now() < end && !second.exited && !aborted()) {
    const d = await sqs.depth(queueUrl);
    if (d.visible + d.inFlight + d.delayed === 0) break;
    await sleep(200);
  }
  if (aborted()) return { ...interrupted, firstExitCode: status.code, firstStopMs };
  const secondStatus = await second.stop(60);
  if (secondStatus.code !== 0) problems.push(`the second worker exited ${secondStatus.code}`);
  return { ids, problems, firstExitCode: status.code, firstStopMs };
}

/** The phase's verdict: nothing valid in the DLQ, every message accepted exactly once. */
function judgePhase(
  ids: readonly string[],
  accepted: ReadonlyMap<string, number>,
  validInDlq: number,
  firstExitCode: number | null,
  problems: string[],
): Omit<SigtermPhaseSummary, "firstStopMs" | "tableRequests" | keyof PhaseSettings> {
  const lost = ids.filter((id) => !accepted.has(id)).length;
  const duplicateSubmissions = [...accepted.values()].reduce((n, c) => n + c - 1, 0);
  if (validInDlq > 0) problems.push(`${validInDlq} valid messages in the DLQ`);
  if (lost > 0) problems.push(`${lost} messages never accepted`);
  if (duplicateSubmissions > 0) problems.push(`${duplicateSubmissions} duplicate submissions`);
  return {
    sent: ids.length,
    accepted: accepted.size,
    duplicateSubmissions,
    lost,
    validInDlq,
    firstExitCode,
    problems,
  };
}

interface PhaseSims {
  /** [enrichment, validator] */
  servers: LocalServer[];
  /** message_id → acceptances */
  accepted: Map<string, number>;
  /** the validator's delay, ms; set to 0 for the second worker */
  validator: { delayMs: number };
}

/** A minimal enrichment API (every user known) and a validator that accepts after a delay. */
function startPhaseSims(delayMs: number, closing: AbortSignal): PhaseSims {
  const accepted = new Map<string, number>();
  const validator = { delayMs };
  const servers = [
    serveLocal(async (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/v1/users:batch") {
        const { user_ids } = await request.json() as { user_ids: string[] };
        return Response.json({ users: user_ids.map(profile), missing: [], errors: [] });
      }
      await request.body?.cancel();
      if (path.startsWith("/v1/users/")) {
        return Response.json(profile(decodeURIComponent(path.slice("/v1/users/".length))));
      }
      return Response.json({ status: "ok" });
    }),
    serveLocal(async (request) => {
      const doc = await request.json() as { message_id?: string };
      await sleep(validator.delayMs, closing).catch(() => {});
      const id = String(doc.message_id);
      accepted.set(id, (accepted.get(id) ?? 0) + 1);
      return Response.json({ status: "accepted" });
    }),
  ];
  return { servers, accepted, validator };
}

async function sendPhaseMessages(sqs: SqsAdmin, queueUrl: string, batch: string[]) {
  for (const id of batch) {
    await sqs.call("SendMessage", {
      QueueUrl: queueUrl,
      MessageBody: JSON.stringify({
        message_id: id,
        user_id: `u-${id}`,
        event_ts: 1735689600,
        payload: {},
      }),
      MessageAttributes: { lab: { DataType: "String", StringValue: "sigterm-phase" } },
    });
  }
}

type PhaseSettings = Pick<
  SigtermPhaseSummary,
  "validatorMs" | "validatorConcurrency" | "tableSlowMs"
>;

/** The environment of a phase worker: `slow` for the first one (narrow, short grace). */
export function phaseEnv(
  baseEnv: Record<string, string>,
  p: {
    queueUrl: string;
    endpoint: string;
    sims: Pick<PhaseSims, "servers">;
    slow: boolean;
    table: Pick<TableService, "table" | "proxyUrl"> | undefined;
    settings: PhaseSettings;
  },
): Record<string, string> {
  return {
    ...baseEnv,
    SQS_QUEUE_URL: p.queueUrl,
    AWS_ENDPOINT_URL_SQS: p.endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "lab",
    AWS_SECRET_ACCESS_KEY: "lab-secret",
    ENRICH_URL: p.sims.servers[0]!.url,
    VALIDATOR_URL: p.sims.servers[1]!.url,
    HTTP_PORT: "0",
    LOG_LEVEL: "warn",
    SQS_RECEIVE_WAIT_SECONDS: "1",
    // Both workers share the table: the second must see what the first accepted.
    ...(p.table
      ? { IDEMPOTENCY_TABLE: p.table.table, AWS_ENDPOINT_URL_DYNAMODB: p.table.proxyUrl }
      : {}),
    // Slow and narrow: most messages are still queued for the validator when the grace ends.
    ...(p.slow
      ? {
        VALIDATOR_CONCURRENCY: String(p.settings.validatorConcurrency),
        SHUTDOWN_GRACE_SECONDS: "2",
        HTTP_TIMEOUT_MS: "5000",
      }
      : {}),
  };
}

function profile(id: string) {
  return { user_id: id, segment: "casual", country: "DE", meta: { request_id: "lab" } };
}
