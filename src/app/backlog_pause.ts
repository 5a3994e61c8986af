/**
 * Intake waits while submissions queued for a validator slot reach half its limit (the next
 * half round is then in hand): more received now would only wait in memory, their visibility
 * running out, where another worker of the fleet could have taken them. It cost too: at the
 * default 500 in flight and 64 validator slots, ~330 messages queued here made the worker's GC
 * copy them on every scavenge (bench/RESULTS.md). MAX_IN_FLIGHT stays the cap.
 */

/** How long a poller waits before it looks again, ms: short, so the queue never runs dry. */
export const BACKLOG_PAUSE_MS = 2;

export interface Backlog {
  /** Submissions waiting for a validator slot. */
  pending: number;
  /** The validator's concurrency limit now (adaptive, ≤ VALIDATOR_CONCURRENCY). */
  limit: number;
}

export function backlogPause(backlog: Backlog): { reason: string; ms: number } | undefined {
  if (backlog.pending < backlog.limit / 2) return undefined;
  return {
    reason: "submissions queued for the validator reach half its limit",
    ms: BACKLOG_PAUSE_MS,
  };
}
