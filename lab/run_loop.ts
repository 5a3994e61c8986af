/**
 * The lab's watch over a running worker: every 100 ms it checks for the end (every valid
 * message accepted, the queue empty, every poison body in the DLQ), for a failure (interrupt,
 * timeout, a worker that exited on its own, a failed send), lets chaos act, and reports progress.
 */
import { sleep } from "../src/lib/clock.ts";
import type { MessageSet } from "./generator.ts";
import type { LabInfra } from "./infra.ts";
import type { Chaos } from "./chaos.ts";
import type { LabOptions, LabProgress } from "./lab_types.ts";
import type { WorkerFleet } from "./worker_slots.ts";
import { processTreeUsage } from "./process_tree.ts";

export interface RunLoopDeps {
  options: LabOptions;
  infra: LabInfra;
  set: MessageSet;
  fleet: WorkerFleet;
  chaos: Chaos;
  progress: (phase: LabProgress["phase"], kills: number) => Promise<LabProgress>;
  sending: { done: () => boolean; error: () => unknown };
  startedAt: number;
  timeoutMs: number;
  /** what went wrong is pushed here */
  problems: string[];
}

export interface RunLoopResult {
  /** when the last final outcome was seen; undefined when the loop ended on a problem */
  doneAt: number | undefined;
  /** the first worker tree's CPU at its first receive, ms (interpolated); undefined after a kill */
  cpuAtFirstReceive: number | undefined;
}

/** Watches until the run is done or fails. */
export async function watchRun(deps: RunLoopDeps): Promise<RunLoopResult> {
  const { options, infra, set, fleet, chaos, problems } = deps;
  let lastProgress = 0;
  let cpuAtFirstReceive: number | undefined;
  let cpuBefore = { t: Date.now(), cpuMs: 0 };
  while (true) {
    await sleep(100);
    if (cpuAtFirstReceive === undefined && chaos.state.kills === 0) {
      const pid = fleet.slots[0]!.process.pid;
      const cpu = { t: Date.now(), cpuMs: (await processTreeUsage(pid)).cpuMs };
      if (infra.proxy.firstReceive.size > 0) {
        const first = Math.min(...infra.proxy.firstReceive.values());
        const share = Math.max(0, Math.min(1, (first - cpuBefore.t) / (cpu.t - cpuBefore.t)));
        cpuAtFirstReceive = cpuBefore.cpuMs + share * (cpu.cpuMs - cpuBefore.cpuMs);
      } else cpuBefore = cpu;
    }
    const now = Date.now();
    const failure = await failureNow(deps, now);
    if (failure) {
      problems.push(failure);
      return { doneAt: undefined, cpuAtFirstReceive };
    }
    const accepted = infra.validator.stats().accepted;
    if (await chaos.tick(now, accepted, set.valid)) continue;
    if (deps.sending.done() && accepted >= set.valid) {
      const [main, dlq] = await Promise.all([
        infra.sqs.depth(infra.queueUrl),
        infra.sqs.depth(infra.dlqUrl),
      ]);
      if (
        main.visible + main.inFlight + main.delayed === 0 &&
        dlq.visible + dlq.inFlight >= set.poison
      ) {
        return { doneAt: Date.now(), cpuAtFirstReceive };
      }
    }
    if (options.onProgress && now - lastProgress >= 500) {
      lastProgress = now;
      options.onProgress(await deps.progress("running", chaos.state.kills));
    }
  }
}

/** The problem that ends the run now, if any. */
async function failureNow(deps: RunLoopDeps, now: number): Promise<string | undefined> {
  if (deps.options.signal?.aborted) return "interrupted before the run finished";
  if (now - deps.startedAt > deps.timeoutMs) {
    return `timed out after ${Math.round(deps.timeoutMs / 1000)} s`;
  }
  const worker = deps.fleet.slots.find((slot) => slot.process.exited)?.process;
  if (worker) {
    const status = await worker.status;
    return `the worker exited on its own (code ${status.code}${
      status.signal ? `, ${status.signal}` : ""
    }) ` +
      `before the run finished; last output: ${worker.tail().slice(-3).join(" | ") || "(none)"}`;
  }
  const sendError = deps.sending.error();
  if (sendError) return `sending failed: ${sendError}`;
  return undefined;
}
