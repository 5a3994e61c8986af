/**
 * The `--chaos` SIGTERM phase (issue 9, defects 1, 3 and 9): a SIGTERM while the
 * validator is slow, on its own queue pair whose RedrivePolicy has maxReceiveCount 1,
 * so every message the worker holds is on its last allowed receive. More messages
 * arrive during the drain (a long poll may take them). A second worker then finishes
 * the queue. Judged: the first worker exits 0, nothing valid reaches the DLQ, every
 * message is accepted exactly once.
 */
import type { SqsAdmin } from "./sqs_admin.ts";
import { type LocalServer, serveLocal, startFauxqs } from "./local_server.ts";
import { sleep } from "../src/lib/retry.ts";
import type { LogSink } from "./worker_process.ts";
import { spawnWorker } from "./worker_process.ts";

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
}

export interface SigtermPhaseSummary {
  sent: number;
  accepted: number;
  duplicateSubmissions: number;
  lost: number;
  validInDlq: number;
  firstExitCode: number | null;
  problems: string[];
}

/** Runs the phase; never throws for a worker failure, the summary says what went wrong. */
export async function runSigtermPhase(options: SigtermPhaseOptions): Promise<SigtermPhaseSummary> {
  const closing = new AbortController();
  const fauxqs = await startFauxqs();
  const { endpoint, admin: sqs } = fauxqs;
  const sims = startPhaseSims(options.slowMs ?? 3000, closing.signal);
  try {
    const { queueUrl, dlqUrl } = await sqs.createQueueWithDlq(
      "sigterm-phase",
      "sigterm-phase-dlq",
      1,
    );
    const ids = Array.from({ length: options.messages * 2 }, (_, i) => `sigterm-${i}`);
    const send = (batch: string[]) => sendPhaseMessages(sqs, queueUrl, batch);
    const spawn = (slow: boolean) =>
      spawnWorker({
        cmd: options.cmd,
        cwd: options.cwd,
        env: phaseEnv(options.baseEnv, { queueUrl, endpoint, sims, slow }),
        log: options.log,
      });
    const problems: string[] = [];

    await options.log.write(`# lab: SIGTERM phase (maxReceiveCount 1, slow validator)\n`);
    await send(ids.slice(0, options.messages));
    const first = spawn(true);
    const deadline = Date.now() + 60_000;
    while (sims.accepted.size < 2 && Date.now() < deadline && !first.exited) await sleep(50);
    // SIGTERM while submissions are slow and queued; more messages arrive during the drain.
    const stopped = first.stop(60);
    await send(ids.slice(options.messages));
    const status = await stopped;
    if (status.forced || status.code !== 0) {
      problems.push(`the first worker exited with ${status.forced ? "SIGKILL" : status.code}`);
    }

    sims.validator.delayMs = 0;
    const second = spawn(false);
    const end = Date.now() + 120_000;
    while (Date.now() < end && !second.exited) {
      const d = await sqs.depth(queueUrl);
      if (d.visible + d.inFlight + d.delayed === 0) break;
      await sleep(200);
    }
    const secondStatus = await second.stop(60);
    if (secondStatus.code !== 0) problems.push(`the second worker exited ${secondStatus.code}`);

    const dlq = await sqs.depth(dlqUrl);
    const validInDlq = dlq.visible + dlq.inFlight + dlq.delayed;
    return judgePhase(ids, sims.accepted, validInDlq, status.code, problems);
  } finally {
    closing.abort();
    for (const server of sims.servers) await server.close();
    await fauxqs.close();
  }
}

/** The phase's verdict: nothing valid in the DLQ, every message accepted exactly once. */
function judgePhase(
  ids: readonly string[],
  accepted: ReadonlyMap<string, number>,
  validInDlq: number,
  firstExitCode: number | null,
  problems: string[],
): SigtermPhaseSummary {
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

function phaseEnv(
  baseEnv: Record<string, string>,
  p: { queueUrl: string; endpoint: string; sims: PhaseSims; slow: boolean },
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
    // Slow and narrow: most messages are still queued for the validator when the grace ends.
    ...(p.slow
      ? { VALIDATOR_CONCURRENCY: "2", SHUTDOWN_GRACE_SECONDS: "2", HTTP_TIMEOUT_MS: "5000" }
      : {}),
  };
}

function profile(id: string) {
  return { user_id: id, segment: "casual", country: "DE", meta: { request_id: "lab" } };
}
