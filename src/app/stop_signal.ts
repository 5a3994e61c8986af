/**
 * What a SIGTERM or SIGINT does (docs/outcomes.md, SIGTERM row). One stop often
 * delivers two signals: `deno task start` forwards the signal to the worker while a
 * process-group kill (Ctrl-C, `kill -- -PGID`, systemd's control-group kill) delivers
 * it too. Signals close together count as one; only a signal well after the drain
 * visibly started (the "stopping" log line) is a person asking to stop now.
 */

/** A later signal forces the stop only this long after the first, ms. */
export const FORCE_AFTER_MS = 2000;

export interface StopSignalState {
  /** When the first signal arrived (monotonic ms); undefined before any. */
  firstAt: number | undefined;
  /** A signal already forced the stop. */
  forced: boolean;
}

/** `stop`: start the graceful drain; `ignore`: part of the same stop; `force`: end the grace now. */
export type StopSignalAction = "stop" | "ignore" | "force";

/** The action for a signal at `now` (monotonic ms). Pure: main.ts keeps the state. */
export function stopSignalAction(
  state: StopSignalState,
  now: number,
  forceAfterMs = FORCE_AFTER_MS,
): StopSignalAction {
  if (state.firstAt === undefined) return "stop";
  if (state.forced) return "ignore";
  return now - state.firstAt >= forceAfterMs ? "force" : "ignore";
}
