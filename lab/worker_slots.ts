/**
 * The lab's worker processes: the log file they write to, their environment (the caller's
 * without the worker's own variables, then the lab's), one slot per `--workers`, and the stop
 * at the end the way systemd stops them (SIGTERM, a drain, exit 0).
 */
import { startCommand } from "./start_command.ts";
import { createLogSink, type LogSink, spawnWorker } from "./worker_process.ts";
import { scrapeAccepted, type Slot, startValidatorFront } from "./fleet.ts";
import { processTreeUsage } from "./process_tree.ts";
import { type Cleanups, freePort, type LabInfra } from "./infra.ts";
import { killing } from "./chaos.ts";
import type { LabOptions } from "./lab_types.ts";

export const REPO_ROOT = new URL("../", import.meta.url).pathname;

/** Env var names the worker reads (README, Configuration) that must not leak from the caller's shell. */
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
  "RATE_LIMIT",
];

export interface WorkerFleet {
  slots: Slot[];
  log: LogSink;
  cmd: string[];
  cwd: string;
  /** the caller's environment without the worker's own variables */
  baseEnv: Record<string, string>;
  /** whether each slot has a counting validator front */
  fronted: boolean;
  /** starts (or restarts) the worker of a slot */
  start: (slot: Omit<Slot, "process">) => Slot["process"];
}

/** Opens the log, starts one worker per slot; closing and killing are pushed onto `cleanups`. */
export async function startWorkers(
  options: LabOptions,
  infra: LabInfra,
  logFile: string,
  cleanups: Cleanups,
): Promise<WorkerFleet> {
  const { env } = infra;
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
  const cmd = options.workerCmd ?? startCommand();
  const cwd = options.workerCwd ?? REPO_ROOT;
  const baseEnv = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) =>
      !WORKER_ENV_PREFIXES.some((p) => k.startsWith(p))
    ),
  );
  // Fronts (an extra hop per submission in the lab process) only where a kill needs them to
  // count what was on the wire; otherwise the workers' own metrics give the per-worker split.
  const fronted = (options.workers !== undefined || infra.table !== undefined) &&
    killing(options.chaos ?? {});
  const start = (slot: Omit<Slot, "process">) =>
    spawnWorker({
      cmd,
      cwd,
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
    const front = fronted ? startValidatorFront(infra.validator.url) : undefined;
    if (front) cleanups.push(() => front.close());
    const port = index === 0 ? Number(env.HTTP_PORT) : freePort();
    const slot = { index, front, kills: 0, port };
    slots.push({ ...slot, process: start(slot) });
  }
  // On an error path no worker may outlive the lab (nor write to a closed log).
  cleanups.push(async () => {
    for (const slot of slots) if (!slot.process.exited) await slot.process.kill("SIGKILL");
  });
  return { slots, log, cmd, cwd, baseEnv, fronted, start };
}

/**
 * SIGTERMs every live worker and checks it drains and exits 0 (problems go to `problems`).
 * Returns the peak RSS seen and the first worker's CPU since `cpuAtFirstReceive`.
 */
export async function stopWorkers(
  fleet: WorkerFleet,
  options: LabOptions,
  cpuAtFirstReceive: number | undefined,
  problems: string[],
): Promise<{ peakRssKb: number; cpuMs: number | undefined }> {
  let peakRssKb = 0;
  let cpuMs: number | undefined;
  if (options.workers !== undefined && !fleet.fronted) {
    for (const slot of fleet.slots) slot.acceptedByMetrics = await scrapeAccepted(slot.port);
  }
  const stopSeconds = options.stopTimeoutSeconds ?? 30;
  await Promise.all(fleet.slots.map(async ({ process: worker }, index) => {
    if (worker.exited) return;
    const usage = await processTreeUsage(worker.pid);
    peakRssKb = Math.max(peakRssKb, usage.peakRssKb);
    // CPU per message is the first worker's (the bench runs one).
    if (index === 0 && cpuAtFirstReceive !== undefined) cpuMs = usage.cpuMs - cpuAtFirstReceive;
    const status = await worker.stop(stopSeconds);
    if (status.forced) {
      problems.push(`the worker did not exit within ${stopSeconds} s of SIGTERM`);
    } else if (status.code !== 0) {
      problems.push(`the worker exited with code ${status.code} after SIGTERM (expected 0)`);
    }
  }));
  return { peakRssKb, cpuMs };
}
