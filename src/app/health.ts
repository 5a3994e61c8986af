/**
 * /healthz and /readyz: what the worker's state says about it. `healthOf` is a
 * pure function of a snapshot (tested row by row); `Readiness` takes the
 * snapshots and logs each change of readiness with its reasons.
 */
import type { BreakerState } from "../lib/circuit_breaker.ts";
import type { RedirectError } from "../lib/errors.ts";
import type { RedriveState } from "../flow/redrive.ts";
import { redirectProblem } from "./redirects.ts";
import type { Health } from "./server.ts";
import type { StateLog } from "./state_log.ts";

/** What readiness is decided from, read at one moment. */
export interface HealthSnapshot {
  /** Startup (the queue's attributes) is not done yet. */
  starting: boolean;
  /** The pipeline's receive loop runs. */
  pipelineAlive: boolean;
  redrive: Pick<RedriveState, "known" | "pending">;
  breakers: ReadonlyArray<{ name: string; state: BreakerState; remainingCooldownMs: number }>;
  /** Downstreams that redirect now. */
  redirects: readonly RedirectError[];
  /** The last ReceiveMessage failure, undefined once one succeeds. */
  lastSqsError: string | undefined;
  /** The signing region is not the queue URL's (region_check.ts), said with what to set. */
  regionMismatch?: string | undefined;
}

/** Alive and the reasons not to be ready (empty = ready), in /readyz's order. */
export function healthOf(s: HealthSnapshot): Health {
  const notReady: string[] = [];
  if (s.starting) notReady.push("starting: reading the queue's attributes");
  else if (!s.redrive.known) {
    notReady.push(`redrive policy not read yet: ${s.redrive.pending ?? "unknown"}`);
  } else if (s.redrive.pending !== undefined) {
    notReady.push(`redrive policy read, ${s.redrive.pending}`);
  }
  for (const b of s.breakers) {
    if (b.state === "open") {
      const seconds = Math.ceil(b.remainingCooldownMs / 1000);
      notReady.push(`${b.name} circuit breaker is open (next probe in ${seconds} s)`);
    }
  }
  for (const error of s.redirects) notReady.push(redirectProblem(error));
  if (s.lastSqsError) notReady.push(`last SQS request failed: ${s.lastSqsError}`);
  // Named while SQS fails, whose own errors never mention the region.
  const sqsFailing = !s.starting && (!s.redrive.known || s.redrive.pending !== undefined ||
    s.lastSqsError !== undefined);
  if (s.regionMismatch && sqsFailing) notReady.unshift(s.regionMismatch);
  // While starting the process counts as alive: /healthz must not fail a slow startup.
  return { alive: s.starting || s.pipelineAlive, notReady };
}

/**
 * Health for the server, and readiness changes for the log (none while starting). Built
 * before what it watches (the breakers tell it of their changes); `observe` gives it the
 * snapshot once everything exists.
 */
export class Readiness {
  readonly #states: Pick<StateLog, "readiness">;
  #snapshot: (() => HealthSnapshot) | undefined;

  constructor(states: Pick<StateLog, "readiness">) {
    this.#states = states;
  }

  /** Where readiness is read from. */
  observe(snapshot: () => HealthSnapshot): void {
    this.#snapshot = snapshot;
  }

  health = (): Health =>
    this.#snapshot ? healthOf(this.#snapshot()) : { alive: true, notReady: ["starting"] };

  /** Something readiness depends on changed: logs the new readiness if it differs. */
  note = (): void => {
    const snapshot = this.#snapshot?.();
    if (!snapshot || snapshot.starting) return;
    const { alive, notReady } = healthOf(snapshot);
    this.#states.readiness(alive && notReady.length === 0, notReady);
  };
}
