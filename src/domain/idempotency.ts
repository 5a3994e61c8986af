/**
 * The decisions of the shared idempotency record (docs/scaling.md), as pure functions:
 * what a claim writes, what a lost race means, how long a lock lives. The
 * DynamoDB store only carries them out. Times: `*Ms` epoch milliseconds,
 * `expires_at` epoch seconds (DynamoDB TTL's unit, though TTL is only cleanup:
 * every expiry is compared in the conditions themselves).
 */

export type RecordStatus = "IN_PROGRESS" | "COMPLETED";

/** The record as stored (one item per message_id). */
export interface IdempotencyRecord {
  id: string;
  status: RecordStatus;
  owner: string;
  /** ms: an IN_PROGRESS lock older than this may be taken over */
  inProgressUntil: number;
  /** s: after this the record counts as absent */
  expiresAt: number;
  payloadHash: string;
}

/** The reason a producer reusing a message_id for another body gets in the DLQ. */
export const MESSAGE_ID_REUSED = "message_id reused with another payload";

/** How long past the SQS visibility a lock lives, ms: a dead owner's copy reappears first. */
export const LOCK_MARGIN_MS = 5000;

/**
 * The condition a claim's PutItem carries: no record, an expired one, or a lapsed
 * IN_PROGRESS lock (a takeover). `status` is a reserved word, hence `#status`.
 */
export const CLAIM_CONDITION =
  "attribute_not_exists(id) OR expires_at < :now OR (#status = :in_progress AND in_progress_until < :now_ms)";

/** Until when a lock taken or extended at `nowMs` for `visibilitySeconds` holds, ms. */
export function lockUntil(nowMs: number, visibilitySeconds: number): number {
  return nowMs + visibilitySeconds * 1000 + LOCK_MARGIN_MS;
}

/**
 * `expires_at` of an IN_PROGRESS record: never before its lock ends (else the
 * `expires_at < :now` clause would hand a live lock to another worker), and a
 * DEDUP_TTL_SECONDS past it for cleanup.
 */
export function inProgressExpiresAt(lockUntilMs: number, dedupTtlSeconds: number): number {
  return Math.ceil(lockUntilMs / 1000) + Math.max(60, dedupTtlSeconds);
}

/** `expires_at` of a COMPLETED record: the dedupe window from now. */
export function completedExpiresAt(nowMs: number, dedupTtlSeconds: number): number {
  return Math.floor(nowMs / 1000) + dedupTtlSeconds;
}

/** What a worker does after its claim lost the race and it read the record. */
export type ConflictDecision =
  /** the record is gone, expired or its lock lapsed: claim again */
  | "claim_again"
  /** accepted before: delete the message without a second submission */
  | "duplicate"
  /** another worker holds a live lock: wait under the heartbeat, look again */
  | "wait"
  /** the same message_id with another body: dead-letter (VALIDATION) */
  | "mismatch"
  /** our own claim: an earlier attempt timed out on our side but was written */
  | "ours";

/** Decides from the record read (ConsistentRead) after a ConditionalCheckFailedException. */
export function decideConflict(
  record: IdempotencyRecord | undefined,
  payloadHash: string,
  nowMs: number,
  owner: string,
): ConflictDecision {
  if (!record) return "claim_again";
  if (record.expiresAt < Math.floor(nowMs / 1000)) return "claim_again";
  if (record.payloadHash !== payloadHash) return "mismatch";
  if (record.status === "IN_PROGRESS" && record.owner === owner) return "ours";
  if (record.status === "COMPLETED") return "duplicate";
  if (record.inProgressUntil < nowMs) return "claim_again";
  return "wait";
}

/**
 * How long to wait before looking at a live lock again, ms: soon at first (the
 * other copy is usually a second from done), then every few seconds, and never
 * past the lock's end by more than a moment.
 */
export function waitBeforeLookingAgain(
  attempt: number,
  record: IdempotencyRecord | undefined,
  nowMs: number,
): number {
  const backoff = Math.min(5000, 250 * 2 ** Math.max(0, attempt - 1));
  if (!record) return backoff;
  const untilLapse = record.inProgressUntil - nowMs + 50;
  return Math.max(50, Math.min(backoff, untilLapse));
}

/** The owner of a claim: which worker, which receipt (a redelivery is another owner). */
export function ownerOf(workerId: string, receiptHandle: string): string {
  return `${workerId}:${receiptHandle}`;
}

/**
 * The text a payload hash is taken of: the parsed message's fields with object
 * keys sorted, so a producer retry that serialises its JSON differently still
 * counts as the same payload.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value as Record<string, unknown>).sort().map((key) =>
      `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`
    );
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
