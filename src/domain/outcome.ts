/**
 * The routing table (docs/outcomes.md): what happens on SQS for every way a message can end.
 * Pure, so every row is visible at once and tested one by one.
 */
import type { ErrorCategory } from "../lib/errors.ts";

/** UNKNOWN_USER_POLICY: submit with `user: null`, dead-letter, or delete. */
export type UnknownUserPolicy = "submit" | "dead-letter" | "drop";

/** The `outcome` label of `sluice_messages_total` and the outcome log line. */
export type Outcome =
  | "accepted"
  | "dead_lettered"
  | "released"
  | "rejected_deleted"
  | "dropped"
  | "deleted_5xx"
  | "duplicate"
  | "deferred";

/** What processing found out about a message. */
export type Verdict =
  | { kind: "accepted" }
  | { kind: "duplicate" }
  | { kind: "poison"; reason: string }
  | { kind: "unknown_user" }
  | { kind: "rejected"; reason: string }
  /** SQS called the receipt stale (received again elsewhere): not submitted, nothing to settle. */
  | { kind: "stale" }
  /**
   * To go back to the queue unworked: the stop's grace ended (or it arrived after the stop
   * began: reason "shutdown"), or an earlier message of its FIFO group went back.
   */
  | { kind: "hand_back"; reason: string }
  /** Over its key's RATE_LIMIT: its slot comes in `seconds` (docs/rate-limits.md). */
  | { kind: "deferred"; seconds: number }
  /** An unexpected error (a bug): not the message's fault as far as anyone knows. */
  | { kind: "failed"; reason: string }
  /** Retries ran out of budget (or the error cannot be retried). */
  | {
    kind: "gave_up";
    target: "enrichment" | "validator" | "table" | "s3";
    category: ErrorCategory;
    reason: string;
    /** The last error was a validator 5xx (for DELETE_ON_5XX). */
    validator5xx: boolean;
  };

/**
 * How long a released message stays out of sight: a backoff that grows with the receive
 * count, as long as SQS allows (12 h after the receive), or none (the next receive takes it).
 */
export type ReleaseVisibility = "backoff" | "longest" | "now";

/** What to do with it. */
export type Action =
  | { kind: "delete"; outcome: Outcome; category?: ErrorCategory; reason?: string }
  | { kind: "dead_letter"; category: ErrorCategory; reason: string }
  | { kind: "release"; category: ErrorCategory; reason: string; visibility: ReleaseVisibility }
  /**
   * Its receive may be the last the redrive policy allows and it must go back: a fresh copy
   * (same body and message attributes) to the main queue, then the original deleted.
   */
  | { kind: "requeue"; reason: string }
  /** Back to the queue out of sight until its rate-limit slot: not a failure (outcome deferred). */
  | { kind: "defer"; seconds: number; reason: string }
  /** Last allowed receive of a transient failure: keep it (heartbeat) and retry in process. */
  | { kind: "hold" }
  /** The receipt is stale: SQS has the message back already; nothing to send (outcome released). */
  | { kind: "let_go"; reason: string };

export interface RouteContext {
  receiveCount: number;
  /**
   * Whether the RedrivePolicy has been read. False until it is (a startup read
   * failed and is retried in the background): then every receive is possibly the last.
   */
  redriveKnown: boolean;
  /** From the RedrivePolicy; undefined when the queue has none (only meaningful when known). */
  maxReceiveCount: number | undefined;
  hasDlq: boolean;
  deleteOn4xx: boolean;
  deleteOn5xx: boolean;
  unknownUserPolicy: UnknownUserPolicy;
  /**
   * For a message held on its last receive: seconds since its receive when the next
   * round would end, and the visibility it is held with. Near SQS's 12 h cap the hold
   * ends in a dead-letter with the reason.
   */
  hold?: { secondsSinceReceive: number; visibilityTimeoutSeconds: number };
}

/**
 * Dead-letter with a reason, or, with no DLQ, keep it away as long as SQS allows. While the
 * RedrivePolicy is not read yet the DLQ may just be unknown so far: then it comes back after
 * an ordinary backoff, to be dead-lettered once the policy is read, not parked for 12 h.
 */
function deadLetter(ctx: RouteContext, category: ErrorCategory, reason: string): Action {
  if (ctx.hasDlq) return { kind: "dead_letter", category, reason };
  return {
    kind: "release",
    category,
    reason,
    visibility: ctx.redriveKnown ? "longest" : "backoff",
  };
}

/** Released with backoff so a fixed build or a recovered downstream can take it again. */
function release(category: ErrorCategory, reason: string): Action {
  return { kind: "release", category, reason, visibility: "backoff" };
}

/** A failure that may repeat on every receive: released, and on its last one dead-lettered with why. */
function releaseOrDeadLetter(ctx: RouteContext, category: ErrorCategory, reason: string): Action {
  return isLastReceive(ctx) && ctx.hasDlq
    ? { kind: "dead_letter", category, reason }
    : release(category, reason);
}

/**
 * The redrive policy may move it on its next failed receive: on its last allowed
 * receive, or on any receive while the policy has not been read yet.
 */
export function isLastReceive(
  ctx: Pick<RouteContext, "receiveCount" | "maxReceiveCount" | "redriveKnown">,
): boolean {
  if (!ctx.redriveKnown) return true;
  return ctx.maxReceiveCount !== undefined && ctx.receiveCount >= ctx.maxReceiveCount;
}

export function route(verdict: Verdict, ctx: RouteContext): Action {
  switch (verdict.kind) {
    case "accepted":
      return { kind: "delete", outcome: "accepted" };
    case "duplicate":
      return { kind: "delete", outcome: "duplicate" };
    case "poison":
      return deadLetter(ctx, "VALIDATION", verdict.reason);
    case "unknown_user":
      // Under the `submit` policy the attempt submits it with `user: null`: no verdict.
      if (ctx.unknownUserPolicy === "drop") {
        return {
          kind: "delete",
          outcome: "dropped",
          category: "UNKNOWN_USER",
          reason: "unknown user",
        };
      }
      return deadLetter(ctx, "UNKNOWN_USER", "unknown user");
    case "rejected":
      if (ctx.deleteOn4xx) {
        return {
          kind: "delete",
          outcome: "rejected_deleted",
          category: "REJECTED",
          reason: verdict.reason,
        };
      }
      // Released so a fixed build can retry it; on its last receive the DLQ copy says why.
      return releaseOrDeadLetter(ctx, "REJECTED", verdict.reason);
    case "stale":
      return {
        kind: "let_go",
        reason: "receipt handle stale: received again elsewhere; not submitted here",
      };
    case "hand_back":
      // A release on a receive that may be the last would let SQS move a valid message to the DLQ.
      return isLastReceive(ctx)
        ? { kind: "requeue", reason: `${verdict.reason}: re-queued as a fresh copy` }
        : { kind: "release", category: "TRANSIENT", reason: verdict.reason, visibility: "now" };
    case "failed":
      return releaseOrDeadLetter(ctx, "TRANSIENT", `unexpected error: ${verdict.reason}`);
    case "gave_up":
      return gaveUp(verdict, ctx);
    case "deferred":
      return deferred(verdict.seconds, ctx);
  }
}

/**
 * A rate-limited message waits for its slot, never toward the redrive policy: released out
 * of sight until then, held on its last receive, and re-queued as a fresh copy when a hold
 * would pass SQS's 12 h cap.
 */
function deferred(seconds: number, ctx: RouteContext): Action {
  const reason = `rate limited: its key's next slot is in ${seconds} s`;
  if (!isLastReceive(ctx)) return { kind: "defer", seconds, reason };
  const hold = ctx.hold;
  if (!hold || !holdMustEnd(hold.secondsSinceReceive, hold.visibilityTimeoutSeconds)) {
    return { kind: "hold" };
  }
  return { kind: "requeue", reason: `${reason}: re-queued as a fresh copy near the 12 h cap` };
}

/** Retries ran out: delete (DELETE_ON_5XX), release, hold on the last receive, or near 12 h give up. */
function gaveUp(verdict: Extract<Verdict, { kind: "gave_up" }>, ctx: RouteContext): Action {
  if (verdict.category === "PERMANENT") {
    return releaseOrDeadLetter(ctx, "PERMANENT", verdict.reason);
  }
  if (verdict.validator5xx && ctx.deleteOn5xx) {
    return {
      kind: "delete",
      outcome: "deleted_5xx",
      category: verdict.category,
      reason: verdict.reason,
    };
  }
  // A transient failure is not poison: never let the redrive policy take it.
  if (!isLastReceive(ctx)) return release(verdict.category, verdict.reason);
  const hold = ctx.hold;
  if (!hold || !holdMustEnd(hold.secondsSinceReceive, hold.visibilityTimeoutSeconds)) {
    return { kind: "hold" };
  }
  // SQS keeps no message invisible past 12 h after its receive: dead-letter it with the
  // reason rather than let the redrive policy move it without one.
  const reason = `still failing after 12 h on its last receive: ${verdict.reason}`;
  return deadLetter(ctx, verdict.category, reason);
}

/** Longest visibility a change may set: 12 h after the receive, less a margin. */
export function maxVisibilitySeconds(secondsSinceReceive: number): number {
  return Math.max(0, Math.floor(43200 - secondsSinceReceive - 5));
}

/**
 * Visibility for a release: doubles with each receive (base, 2×base, …), capped at
 * what SQS allows; `longest` takes the cap, `now` is 0.
 */
export function releaseVisibilitySeconds(
  receiveCount: number,
  secondsSinceReceive: number,
  options: { baseSeconds?: number; visibility?: ReleaseVisibility } = {},
): number {
  if (options.visibility === "now") return 0;
  const cap = maxVisibilitySeconds(secondsSinceReceive);
  if (options.visibility === "longest") return cap;
  const base = options.baseSeconds ?? 10;
  const exponent = Math.min(Math.max(receiveCount, 1) - 1, 20);
  return Math.min(cap, base * 2 ** exponent);
}

/** Seconds a hold keeps in hand before SQS's 12 h cap for the dead-letter send, at most. */
const HOLD_MARGIN_SECONDS = 300;

/**
 * A message held on its last receive must be dead-lettered (with its reason) now:
 * the 12 h cap leaves less visibility than one heartbeat period (or 5 minutes,
 * whichever is shorter) to hold it further. `secondsSinceReceive` comes from a
 * monotonic clock, so a wall-clock jump cannot end a hold early.
 */
export function holdMustEnd(
  secondsSinceReceive: number,
  visibilityTimeoutSeconds: number,
): boolean {
  return maxVisibilitySeconds(secondsSinceReceive) <
    Math.min(visibilityTimeoutSeconds, HOLD_MARGIN_SECONDS);
}
