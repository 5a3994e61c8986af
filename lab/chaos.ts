/**
 * The lab's chaos during a run: SIGKILLs (at a rate per second and once after N receives, the
 * worker restarted), the one SQS outage, the table fault windows; and after the run, the SIGTERM
 * phase hook. The slow enrichment requests and the validator redirects are the simulators' own
 * (lab/infra.ts).
 */
import { MAX_RECEIVE_COUNT } from "./infra.ts";
import { createRng, deriveSeed } from "./prng.ts";
import { sleep } from "../src/lib/clock.ts";
import { onWireAtKill, type Slot } from "./fleet.ts";
import type { LabInfra } from "./infra.ts";
import type { ChaosOptions, TableFaultWindow } from "./lab_types.ts";
import type { KillMark } from "./duplicate_causes.ts";
import type { LogSink } from "./worker_process.ts";
import { runSigtermPhase, type SigtermPhaseSummary } from "./sigterm_phase.ts";

export interface ChaosDeps {
  chaos: ChaosOptions;
  seed: number;
  infra: LabInfra;
  slots: Slot[];
  log: LogSink;
  /** starts a worker for a slot again after its kill */
  restart: (slot: Slot) => Slot["process"];
}

/** What chaos has done so far. */
export interface ChaosState {
  kills: number;
  /** messages in flight at the kills */
  killedInFlight: number;
  /** the killed workers' submissions on the wire at their kills */
  onWire: number;
  /** the killed workers' peak RSS, kB */
  peakRssKb: number;
  /** each kill: the slot and when it was restarted (the duplicates' causes read it) */
  killLog: KillMark[];
  /** message_id -> the kills it was in flight at (each such receive ended unsettled) */
  strandedAtKills: Map<string, number>;
  /** the table fault windows started so far (start in ms since the epoch) */
  tableWindows: Array<{ kind: TableFaultWindow["kind"]; startedAt: number; seconds: number }>;
}

export interface Chaos {
  readonly state: ChaosState;
  /** Applies what is due now; true when it killed a worker (the loop then starts over). */
  tick(now: number, accepted: number, valid: number): Promise<boolean>;
}

/** Whether the options ask for SIGKILLs at all. */
export function killing(chaos: ChaosOptions): boolean {
  return (chaos.crashRate ?? 0) > 0 || (chaos.crashAfterReceive ?? 0) > 0;
}

/** Random crashes stop once this share of the valid messages is accepted. */
const CRASH_UNTIL_SHARE = 0.9;

/** How long after a restart no table refusal starts: the restarted worker's startup check. */
const RESTART_SETTLE_MS = 15_000;

/**
 * Whether a due table window may start now: a worker refuses to start on a table that refuses
 * it (exit 2), so no refusal begins while a restarted worker may still be starting.
 */
export function refusalMayStart(
  window: { kind: string },
  now: number,
  lastRestartAt: number,
): boolean {
  return window.kind !== "refuse" || now - lastRestartAt >= RESTART_SETTLE_MS;
}

/**
 * Whether a message in flight now is on the last receive SQS allows it, counting only the
 * receives kills ended (`stranded`): a kill now would have the redrive policy move it untried.
 */
export function onLastReceive(
  inFlightIds: readonly string[],
  stranded: ReadonlyMap<string, number>,
  maxReceiveCount: number,
): boolean {
  return inFlightIds.some((id) => (stranded.get(id) ?? 0) >= maxReceiveCount - 1);
}

/** How long the table still refuses every request (the running window is a refusal), ms. */
export function refusalLeftMs(
  windows: ReadonlyArray<{ kind: string }>,
  windowUntil: number,
  now: number,
): number {
  return windows.at(-1)?.kind === "refuse" ? Math.max(0, windowUntil - now) : 0;
}

/** The next window due: none while one runs, else the next once its share of acceptances is in. */
export function dueWindow(
  plan: readonly TableFaultWindow[],
  started: number,
  now: number,
  runningUntil: number,
  accepted: number,
  valid: number,
): TableFaultWindow | undefined {
  const next = plan[started];
  if (!next || now < runningUntil) return undefined;
  return accepted >= valid * next.atAccepted ? next : undefined;
}

export function createChaos(deps: ChaosDeps): Chaos {
  const { chaos, infra, slots, log } = deps;
  const rng = createRng(deriveSeed(deps.seed, "chaos"));
  const state: ChaosState = {
    kills: 0,
    killedInFlight: 0,
    onWire: 0,
    peakRssKb: 0,
    killLog: [],
    strandedAtKills: new Map(),
    tableWindows: [],
  };
  const plan = infra.tableFaults ? chaos.tableFaults ?? [] : [];
  let windowUntil = 0;
  let lastRestartAt = -Infinity;
  // Records read COMPLETED at one kill are not read again at the next.
  const completed = new Set<string>();
  let crashAfterReceiveDone = !(chaos.crashAfterReceive && chaos.crashAfterReceive > 0);
  let outageDone = !(chaos.sqsOutageSeconds && chaos.sqsOutageSeconds > 0);
  let lastTick = Date.now();

  const kill = async (why: string) => {
    // One worker's seed draws only in a fleet: a single worker's chaos replays as before.
    const slot = slots[slots.length > 1 ? rng.int(0, slots.length - 1) : 0]!;
    await killSlot(deps, state, slot, completed, why);
    await sleep(200);
    // A worker refuses to start on a table that refuses it (exit 2, as the README says): the
    // restart waits for the refusal window to end, as an operator's would.
    const refusingFor = refusalLeftMs(state.tableWindows, windowUntil, Date.now());
    if (refusingFor > 0) {
      await log.write(`# lab: restart waits ${refusingFor} ms for the table refusal to end\n`);
      await sleep(refusingFor + 100);
    }
    // Until the restart, whatever reaches the slot's front is the killed worker's.
    state.killLog.push({ slot: slot.index, at: Date.now() });
    slot.process = deps.restart(slot);
    lastRestartAt = Date.now();
  };

  const lastReceiveInFlight = () =>
    onLastReceive(infra.proxy.inFlightIds(), state.strandedAtKills, MAX_RECEIVE_COUNT);

  const tick = async (now: number, accepted: number, valid: number) => {
    let window = dueWindow(plan, state.tableWindows.length, now, windowUntil, accepted, valid);
    if (window && !refusalMayStart(window, now, lastRestartAt)) window = undefined;
    if (window && infra.table) {
      const { seconds, atAccepted: _, ...fault } = window;
      state.tableWindows.push({ kind: fault.kind, startedAt: now, seconds });
      // The table's child starts the window when it reads the command: its end is the one to wait for.
      windowUntil = await infra.table.startFault(fault, seconds * 1000);
      await log.write(`# lab: table fault ${JSON.stringify(fault)} for ${seconds} s\n`);
    }
    if (!outageDone && accepted >= valid / 4) {
      outageDone = true;
      infra.proxy.startOutage(chaos.sqsOutageSeconds! * 1000);
      await log.write(`# lab: SQS outage for ${chaos.sqsOutageSeconds} s\n`);
    }
    if (
      !crashAfterReceiveDone && infra.proxy.stats().messagesReceived >= chaos.crashAfterReceive!
    ) {
      crashAfterReceiveDone = true;
      await kill(`after ${chaos.crashAfterReceive} receives`);
      return true;
    }
    // Random crashes only while most valid messages are still at work (the first 90 %). In the
    // tail, a worker killed every few seconds leaves long polls open in the emulator that take
    // the last messages as they reappear, each such receive spent with no worker to settle it,
    // until the redrive policy moves them: that tests the lab, not the worker.
    if (chaos.crashRate && accepted < valid * CRASH_UNTIL_SHARE && now - lastTick >= 1000) {
      lastTick = now;
      // Nor one that would end the last receive SQS allows a message: the redrive policy would
      // move it untried, which says nothing of the worker (kills are the lab's, not the queue's).
      if (rng.chance(chaos.crashRate) && !lastReceiveInFlight()) {
        await kill(`crash rate ${chaos.crashRate}/s`);
        return true;
      }
    }
    return false;
  };
  return { state, tick };
}

/**
 * SIGKILLs the slot's worker and counts what the kill stranded: messages in flight (and which),
 * the submissions it had on the wire (read around the table's fault proxy, from dynalite).
 */
async function killSlot(
  deps: ChaosDeps,
  state: ChaosState,
  slot: Slot,
  completed: Set<string>,
  why: string,
): Promise<void> {
  const { infra, log } = deps;
  state.peakRssKb = Math.max(state.peakRssKb, await readPeakRssKb(slot.process.pid));
  const stranded = infra.proxy.inFlight();
  for (const id of infra.proxy.inFlightIds()) {
    state.strandedAtKills.set(id, (state.strandedAtKills.get(id) ?? 0) + 1);
  }
  state.killedInFlight += stranded;
  state.kills++;
  slot.kills++;
  await slot.process.kill("SIGKILL");
  // Counted after the exit (a dead worker records nothing more) and a moment more, so the
  // requests it wrote just before dying have reached the front.
  await sleep(100);
  const table = infra.table;
  const wire = slot.front
    ? await onWireAtKill(
      slot.front,
      table && { client: table.client, name: table.table, completed },
      slot.process.startedAt,
    )
    : { onWire: 0, unread: 0 };
  state.onWire += wire.onWire;
  await log.write(
    `# lab: SIGKILL worker ${slot.index + 1} (${why}); ${stranded} messages in flight, ` +
      `${wire.onWire} submissions on the wire` +
      (wire.unread ? ` (${wire.unread} records unreadable, counted in)` : "") + "\n",
  );
}

/** After a clean run, the `--chaos` SIGTERM phase; its problems are added to `problems`. */
export async function sigtermPhaseHook(
  chaos: ChaosOptions,
  problems: string[],
  signal: AbortSignal | undefined,
  worker: { cmd: string[]; cwd: string; baseEnv: Record<string, string>; log: LogSink },
): Promise<SigtermPhaseSummary | undefined> {
  if (!chaos.sigtermPhaseMessages || problems.length > 0 || signal?.aborted) return undefined;
  const phase = await runSigtermPhase({
    ...worker,
    messages: chaos.sigtermPhaseMessages,
    ...(chaos.sigtermPhaseValidatorMs !== undefined
      ? { slowMs: chaos.sigtermPhaseValidatorMs }
      : {}),
    ...(chaos.sigtermPhaseValidatorConcurrency !== undefined
      ? { validatorConcurrency: chaos.sigtermPhaseValidatorConcurrency }
      : {}),
    ...(chaos.sigtermPhaseTableSlowMs ? { tableSlowMs: chaos.sigtermPhaseTableSlowMs } : {}),
    ...(signal ? { signal } : {}),
  });
  problems.push(...phase.problems.map((p) => `SIGTERM phase: ${p}`));
  return phase;
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
