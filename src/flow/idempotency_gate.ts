/**
 * The pipeline's port to the shared idempotency record. The pipeline asks `claim()` before
 * working on a message, `maySubmit()` just before its submission, `complete()` after the
 * validator accepted it and `release()` after it handed the message back; the visibility
 * heartbeat calls `extend()` and `lost()`. None of them knows DynamoDB. A claim that lost the
 * race reads the record and, per `decideConflict`, deletes a duplicate, dead-letters a reused
 * message_id, or waits (under the heartbeat) for the other worker's lock to end. Every table
 * failure is the table's, not the message's (docs/failure-handling.md).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { CircuitBreaker } from "../lib/circuit_breaker.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { backoffDelay } from "../lib/retry.ts";
import { CircuitOpenError, TableError } from "../lib/errors.ts";
import type { InputMessage } from "../domain/message_schema.ts";
import {
  canonicalJson,
  completedExpiresAt,
  type ConflictDecision,
  decideConflict,
  inProgressExpiresAt,
  lockUntil,
  ownerOf,
  waitBeforeLookingAgain,
} from "../domain/idempotency.ts";
import type { IdempotencyStore } from "./idempotency_store.ts";

/** A claim this worker holds on one message_id. */
export interface IdempotencyLock {
  readonly messageId: string;
  readonly receiptHandle: string;
  /**
   * False once an extension found another owner, or the heartbeat found the receipt stale:
   * the message is no longer this worker's.
   */
  readonly held: boolean;
}

export type ClaimResult =
  | { kind: "proceed"; lock: IdempotencyLock }
  | { kind: "duplicate" }
  | { kind: "mismatch" };

/** What the pipeline sees (the port). */
export interface IdempotencyGate {
  /**
   * Claims the message_id. Throws TableError when the table fails and CircuitOpenError while
   * its breaker is open: the caller retries under the heartbeat (docs/failure-handling.md).
   */
  claim(message: InputMessage, receiptHandle: string, signal: AbortSignal): Promise<ClaimResult>;
  /** The lock is held and lasts long enough for a submission to finish under it. */
  maySubmit(lock: IdempotencyLock): boolean;
  /**
   * Marks it COMPLETED, retrying a failing table while the lock still holds later copies off,
   * until `stop`; never throws (a failure is counted as at-least-once).
   */
  complete(lock: IdempotencyLock, stop?: AbortSignal): Promise<void>;
  /** Gives the claim back (one attempt; it lapses on its own otherwise); never throws. */
  release(lock: IdempotencyLock): Promise<void>;
  /** The heartbeat extended this receipt's visibility by `seconds`: extend its lock too. */
  extend(receiptHandle: string, seconds: number): void;
  /** The heartbeat found this receipt stale: the message was received again elsewhere. */
  lost(receiptHandle: string): void;
}

export interface GateOptions {
  store: IdempotencyStore;
  /** The table's breaker: every request passes it; while open, claims fail fast. */
  breaker: Pick<CircuitBreaker, "run">;
  /** Distinguishes this process among the fleet (host:pid:random). */
  workerId: string;
  /** SQS_VISIBILITY_TIMEOUT_SECONDS: a new lock lasts this long (plus LOCK_MARGIN_MS). */
  visibilityTimeoutSeconds: number;
  /** DEDUP_TTL_SECONDS: how long a COMPLETED record keeps duplicates out. */
  dedupTtlSeconds: number;
  /** How long a submission may take (HTTP_TIMEOUT_MS): a lock ending sooner is not submitted under. */
  submitMarginMs: number;
  logger: Logger;
  /** A lost race and what it turned out to be. */
  onConflict?: (decision: ConflictDecision) => void;
  /** A lapsed lock of another owner was taken over. */
  onTakeover?: () => void;
  /** An extension or completion found another owner (fencing). */
  onFenced?: (action: "extend" | "complete") => void;
  /** A COMPLETED write that failed: a later copy may be submitted again after the lock lapses. */
  onAtLeastOnce?: (cause: "complete_failed") => void;
  /** Lock times (epoch ms: they are compared across workers), waits and their jitter. */
  clock: Clock;
}

interface Held {
  messageId: string;
  receiptHandle: string;
  owner: string;
  held: boolean;
  /** Until when the table is known to hold the lock for us, epoch ms. */
  until: number;
}

/** Attempts of a COMPLETED write at least, even past the lock's end: the message is accepted. */
const COMPLETE_ATTEMPTS = 3;

/**
 * The gate over the store. Each store request passes the table's breaker once; a failure
 * is thrown as TableError (logged without message ids, so repeats are rate-limited) and the
 * caller decides whether to retry.
 */
export class StoreGate implements IdempotencyGate {
  readonly #options: GateOptions;
  /** receipt handle → the lock taken under it, for the heartbeat's extensions. */
  readonly #locks = new Map<string, Held>();

  constructor(options: GateOptions) {
    this.#options = options;
  }

  async claim(message: InputMessage, receiptHandle: string, signal: AbortSignal) {
    const payloadHash = hashPayload(message);
    const id = message.message_id;
    const owner = ownerOf(this.#options.workerId, receiptHandle);
    const mine = { id, owner, payloadHash, receiptHandle };
    let mustRead = false;
    for (let waits = 0;;) {
      if (!mustRead) {
        const claimed = await this.#put(mine, signal);
        if (claimed) return claimed;
      }
      const record = await this.#request(
        "GetItem",
        signal,
        () => this.#options.store.read(id, signal),
      );
      const decision = decideConflict(record, payloadHash, this.#options.clock.now(), owner);
      this.#options.onConflict?.(decision);
      if (decision === "ours") {
        // A claim that timed out on our side was written: ours, extended now so it lasts.
        const held = { messageId: id, receiptHandle, owner, held: true, until: 0 };
        if (await this.#extendNow(held, signal)) return this.#proceed(held);
        mustRead = true;
        continue;
      }
      if (decision === "duplicate") return { kind: "duplicate" as const };
      if (decision === "mismatch") return { kind: "mismatch" as const };
      mustRead = decision === "wait";
      if (!mustRead) continue; // claim_again
      // Another worker holds a live lock: never submit; look again soon.
      if (++waits === 1) {
        this.#options.logger.debug("another worker holds this message_id; waiting", {
          message_id: id,
        });
      }
      const now = this.#options.clock.now();
      await this.#options.clock.sleep(waitBeforeLookingAgain(waits, record, now), signal);
    }
  }

  /** The conditional PutItem of a new lock; the claim when it was taken, else undefined. */
  async #put(
    mine: { id: string; owner: string; payloadHash: string; receiptHandle: string },
    signal: AbortSignal,
  ): Promise<ClaimResult | undefined> {
    const { id, owner, payloadHash, receiptHandle } = mine;
    const now = this.#options.clock.now();
    const until = lockUntil(now, this.#options.visibilityTimeoutSeconds);
    const expiresAt = inProgressExpiresAt(until, this.#options.dedupTtlSeconds);
    const record = { id, status: "IN_PROGRESS" as const, owner, payloadHash };
    const answer = await this.#request(
      "PutItem",
      signal,
      () =>
        this.#options.store.claim({ ...record, inProgressUntil: until, expiresAt }, now, signal),
    );
    if (!answer.claimed) return undefined;
    if (answer.takeover) {
      this.#options.onTakeover?.();
      this.#options.logger.info("took over a lapsed idempotency lock", { message_id: id });
    }
    return this.#proceed({ messageId: id, receiptHandle, owner, held: true, until });
  }

  maySubmit(lock: IdempotencyLock): boolean {
    const held = lock as Held;
    return held.held && this.#options.clock.now() + this.#options.submitMarginMs < held.until;
  }

  async complete(lock: IdempotencyLock, stop?: AbortSignal): Promise<void> {
    const held = this.#forget(lock);
    const { clock } = this.#options;
    for (let attempt = 1;; attempt++) {
      const expiresAt = completedExpiresAt(clock.now(), this.#options.dedupTtlSeconds);
      try {
        const ok = await this.#request(
          "UpdateItem",
          undefined,
          () => this.#options.store.complete(held.messageId, held.owner, expiresAt),
        );
        if (ok) return;
        this.#options.onFenced?.("complete");
        this.#options.logger.warn("accepted a message whose idempotency lock another worker took", {
          message_id: held.messageId,
        });
        return;
      } catch (error) {
        const open = error instanceof CircuitOpenError ? error.remainingMs : 0;
        const delay = Math.max(backoffDelay(attempt, 200, 2000, clock.random), open);
        // Worth retrying while the lock still keeps a later copy waiting (docs/scaling.md).
        const left = held.until - clock.now();
        if (attempt >= COMPLETE_ATTEMPTS && left <= 0) break;
        if (!(await this.#pause(Math.min(delay, Math.max(left, 200)), stop))) break;
      }
    }
    // Accepted all the same: the lock lapses and a later copy may be submitted again.
    this.#options.onAtLeastOnce?.("complete_failed");
    this.#options.logger.warn(
      "could not mark an accepted message COMPLETED in the idempotency table; a later copy may be submitted again",
    );
    this.#options.logger.debug("not marked COMPLETED", { message_id: held.messageId });
  }

  /** Sleeps `ms`; false when `stop` ended it (or had already). */
  async #pause(ms: number, stop: AbortSignal | undefined): Promise<boolean> {
    if (stop?.aborted) return false;
    try {
      await this.#options.clock.sleep(ms, stop);
      return true;
    } catch {
      return false;
    }
  }

  async release(lock: IdempotencyLock): Promise<void> {
    const held = this.#forget(lock);
    if (!held.held) return;
    try {
      await this.#request(
        "DeleteItem",
        undefined,
        () => this.#options.store.release(held.messageId, held.owner),
      );
    } catch {
      // The lock lapses on its own (in_progress_until); the next copy waits at most that long.
    }
  }

  extend(receiptHandle: string, seconds: number): void {
    const held = this.#locks.get(receiptHandle);
    if (!held || !held.held) return;
    void this.#extendNow(held, undefined, seconds).catch(() => {
      // Logged by #request; the lock's `until` stays where it was, so maySubmit() says no in time.
    });
  }

  lost(receiptHandle: string): void {
    const held = this.#locks.get(receiptHandle);
    if (held) held.held = false;
  }

  /** Pushes the lock's end; false (and not held any more) when another owner has it. */
  async #extendNow(held: Held, signal?: AbortSignal, seconds?: number): Promise<boolean> {
    const until = lockUntil(
      this.#options.clock.now(),
      seconds ?? this.#options.visibilityTimeoutSeconds,
    );
    const expiresAt = inProgressExpiresAt(until, this.#options.dedupTtlSeconds);
    const ok = await this.#request(
      "UpdateItem",
      signal,
      () => this.#options.store.extend(held.messageId, held.owner, until, expiresAt, signal),
    );
    if (ok) {
      held.until = Math.max(held.until, until);
      return true;
    }
    if (held.held && this.#locks.has(held.receiptHandle)) {
      this.#options.onFenced?.("extend");
      this.#options.logger.warn("lost an idempotency lock to another worker; will not submit", {
        message_id: held.messageId,
      });
    }
    held.held = false;
    return false;
  }

  #proceed(held: Held): ClaimResult {
    this.#locks.set(held.receiptHandle, held);
    return { kind: "proceed", lock: held };
  }

  #forget(lock: IdempotencyLock): Held {
    this.#locks.delete(lock.receiptHandle);
    return lock as Held;
  }

  /**
   * One store request through the breaker. An abort (the caller's signal) is passed on as it
   * is and counts against nothing; any other failure is the table's: TableError.
   */
  async #request<T>(action: string, signal: AbortSignal | undefined, fn: () => Promise<T>) {
    try {
      return await this.#options.breaker.run(fn, () => !signal?.aborted);
    } catch (error) {
      if (signal?.aborted || error instanceof CircuitOpenError) throw error;
      // No message ids: a failing table repeats this line per request, and the logger's
      // repeat limiter folds identical lines into one a minute.
      this.#options.logger.warn("idempotency table request failed", { action, error });
      throw error instanceof TableError ? error : new TableError(action, error);
    }
  }
}

/** SHA-256 (hex) of the message's canonical JSON: the payload identity behind a message_id. */
export function hashPayload(message: InputMessage): string {
  const text = canonicalJson({
    message_id: message.message_id,
    user_id: message.user_id,
    event_ts: message.event_ts,
    payload: message.payload,
  });
  return bytesToHex(sha256(utf8ToBytes(text)));
}
