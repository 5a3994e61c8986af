/**
 * The pipeline's port to the shared idempotency record (issue 14). The
 * pipeline asks `claim()` before working on a message, `complete()` after the
 * validator accepted it, `release()` when it gives the message back, and the
 * visibility heartbeat calls `extend()`; none of them knows DynamoDB. A claim
 * that lost the race reads the record and, per `decideConflict`, deletes a
 * duplicate, dead-letters a reused message_id, or waits (under the heartbeat)
 * for the other worker's lock to end.
 */
import type { Logger } from "../lib/logger.ts";
import { backoffDelay, sleep as defaultSleep } from "../lib/retry.ts";
import { isRetriable } from "../lib/errors.ts";
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
  /** False once an extension found another owner: do not submit. */
  readonly held: boolean;
}

export type ClaimResult =
  | { kind: "proceed"; lock: IdempotencyLock }
  | { kind: "duplicate" }
  | { kind: "mismatch" };

/** What the pipeline sees (the port). */
export interface IdempotencyGate {
  claim(message: InputMessage, receiptHandle: string, signal: AbortSignal): Promise<ClaimResult>;
  complete(lock: IdempotencyLock): Promise<void>;
  release(lock: IdempotencyLock): Promise<void>;
  /** The heartbeat extended this receipt's visibility by `seconds`: extend its lock too. */
  extend(receiptHandle: string, seconds: number): void;
}

export interface GateOptions {
  store: IdempotencyStore;
  /** Distinguishes this process among the fleet (host:pid:random). */
  workerId: string;
  /** SQS_VISIBILITY_TIMEOUT_SECONDS: a new lock lasts this long (plus LOCK_MARGIN_MS). */
  visibilityTimeoutSeconds: number;
  /** DEDUP_TTL_SECONDS: how long a COMPLETED record keeps duplicates out. */
  dedupTtlSeconds: number;
  logger: Logger;
  /** A lost race and what it turned out to be. */
  onConflict?: (decision: ConflictDecision) => void;
  /** A lapsed lock of another owner was taken over. */
  onTakeover?: () => void;
  /** An extension or completion found another owner (fencing). */
  onFenced?: (action: "extend" | "complete") => void;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

interface Held {
  messageId: string;
  receiptHandle: string;
  owner: string;
  held: boolean;
}

/** The gate with the store's transient failures retried in place (the heartbeat covers the wait). */
export class StoreGate implements IdempotencyGate {
  readonly #o: GateOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** receipt handle → the lock taken under it, for the heartbeat's extensions. */
  readonly #locks = new Map<string, Held>();

  constructor(options: GateOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? defaultSleep;
  }

  async claim(message: InputMessage, receiptHandle: string, signal: AbortSignal) {
    const payloadHash = await hashPayload(message);
    const id = message.message_id;
    const owner = ownerOf(this.#o.workerId, receiptHandle);
    let mustRead = false;
    for (let waits = 0;;) {
      if (!mustRead) {
        // The time is read per attempt: a retry after a backoff must not claim with a stale now.
        const answer = await this.#patiently(() => {
          const now = this.#now();
          const until = lockUntil(now, this.#o.visibilityTimeoutSeconds);
          const expiresAt = inProgressExpiresAt(until, this.#o.dedupTtlSeconds);
          const record = { id, status: "IN_PROGRESS" as const, owner, payloadHash };
          return this.#o.store.claim(
            { ...record, inProgressUntil: until, expiresAt },
            now,
            signal,
          );
        }, signal);
        if (answer.claimed) {
          if (answer.takeover) {
            this.#o.onTakeover?.();
            this.#o.logger.info("took over a lapsed idempotency lock", { message_id: id });
          }
          const lock: Held = { messageId: id, receiptHandle, owner, held: true };
          this.#locks.set(receiptHandle, lock);
          return { kind: "proceed" as const, lock };
        }
      }
      const record = await this.#patiently(() => this.#o.store.read(id, signal), signal);
      const decision = decideConflict(record, payloadHash, this.#now(), owner);
      this.#o.onConflict?.(decision);
      if (decision === "ours") {
        // The claim that timed out on our side was written: take it as ours and extend it soon.
        const lock: Held = { messageId: id, receiptHandle, owner, held: true };
        this.#locks.set(receiptHandle, lock);
        return { kind: "proceed" as const, lock };
      }
      if (decision === "duplicate") return { kind: "duplicate" as const };
      if (decision === "mismatch") return { kind: "mismatch" as const };
      if (decision === "claim_again") {
        mustRead = false;
        continue;
      }
      // Another worker holds a live lock: never submit; look again soon.
      waits++;
      if (waits === 1) {
        this.#o.logger.debug("another worker holds this message_id; waiting", { message_id: id });
      }
      await this.#sleep(waitBeforeLookingAgain(waits, record, this.#now()), signal);
      mustRead = true;
    }
  }

  async complete(lock: IdempotencyLock): Promise<void> {
    const held = this.#forget(lock);
    const expiresAt = completedExpiresAt(this.#now(), this.#o.dedupTtlSeconds);
    try {
      const ok = await this.#patiently(
        () => this.#o.store.complete(held.messageId, held.owner, expiresAt),
        undefined,
        5,
      );
      if (!ok) {
        this.#o.onFenced?.("complete");
        this.#o.logger.warn("accepted a message whose idempotency lock another worker took", {
          message_id: held.messageId,
        });
      }
    } catch (error) {
      // Accepted all the same: the lock lapses and a later copy may be submitted again.
      this.#o.logger.warn("could not mark a message COMPLETED in the idempotency table", {
        message_id: held.messageId,
        error,
      });
    }
  }

  async release(lock: IdempotencyLock): Promise<void> {
    const held = this.#forget(lock);
    if (!held.held) return;
    try {
      await this.#patiently(() => this.#o.store.release(held.messageId, held.owner), undefined, 3);
    } catch (error) {
      // The lock lapses on its own (in_progress_until); the next copy waits at most that long.
      this.#o.logger.warn("could not release an idempotency lock; it lapses on its own", {
        message_id: held.messageId,
        error,
      });
    }
  }

  extend(receiptHandle: string, seconds: number): void {
    const held = this.#locks.get(receiptHandle);
    if (!held || !held.held) return;
    const until = lockUntil(this.#now(), seconds);
    const expiresAt = inProgressExpiresAt(until, this.#o.dedupTtlSeconds);
    this.#o.store.extend(held.messageId, held.owner, until, expiresAt).then(
      (ok) => {
        if (ok || !this.#locks.has(receiptHandle)) return;
        held.held = false;
        this.#o.onFenced?.("extend");
        this.#o.logger.warn("lost an idempotency lock to another worker; will not submit", {
          message_id: held.messageId,
        });
      },
      (error) =>
        this.#o.logger.warn("could not extend an idempotency lock", {
          message_id: held.messageId,
          error,
        }),
    );
  }

  #forget(lock: IdempotencyLock): Held {
    this.#locks.delete(lock.receiptHandle);
    return lock as Held;
  }

  /** Retries transient store failures with backoff until `signal` aborts (or `attempts` run out). */
  async #patiently<T>(
    fn: () => Promise<T>,
    signal: AbortSignal | undefined,
    attempts = Number.POSITIVE_INFINITY,
  ): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await fn();
      } catch (error) {
        // Only the store's own transient answers: a bug (a TypeError) must not loop for ever.
        const known = error instanceof Error && "category" in error;
        if (signal?.aborted || !known || !isRetriable(error) || attempt >= attempts) throw error;
        if (attempt === 1 || attempt % 10 === 0) {
          this.#o.logger.warn("idempotency table request failed; retrying", { error, attempt });
        }
        await this.#sleep(backoffDelay(attempt, 100, 5000, this.#random), signal);
      }
    }
  }
}

/** SHA-256 (hex) of the message's canonical JSON: the payload identity behind a message_id. */
export async function hashPayload(message: InputMessage): Promise<string> {
  const text = canonicalJson({
    message_id: message.message_id,
    user_id: message.user_id,
    event_ts: message.event_ts,
    payload: message.payload,
  });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
