/**
 * Keeps messages that are still being worked on invisible: shortly before a
 * message's visibility runs out, its visibility is extended (batched through the
 * Settler). A message leaves the heartbeat before it is settled, so no
 * extension is ever queued after its delete.
 */
import { maxVisibilitySeconds } from "../domain/outcome.ts";
import type { Clock } from "../lib/clock.ts";
import type { SettleResult } from "./settle.ts";

export interface HeartbeatOptions {
  /** Extends one message; the Settler's changeVisibility. */
  extend: (receiptHandle: string, visibilityTimeout: number) => Promise<SettleResult>;
  /** Visibility requested per extension, seconds (SQS_VISIBILITY_TIMEOUT_SECONDS). */
  visibilityTimeoutSeconds: number;
  /** How often it looks, ms. Default 1000. */
  intervalMs?: number;
  /** Extend when less than this remains, ms. Default half the visibility timeout, at least 2 s. */
  leadMs?: number;
  /** A message whose extension failed: it may be received again elsewhere. */
  onLost?: (receiptHandle: string, reason: string) => void;
  /**
   * SQS called the receipt stale: the message was received again elsewhere and is no longer
   * this worker's (its idempotency lock is not either).
   */
  onStale?: (receiptHandle: string) => void;
  /** Called once per extension request. */
  onExtend?: () => void;
  /** Called with each extension: the idempotency lock of the message follows its visibility. */
  alsoExtend?: (receiptHandle: string, visibilityTimeout: number) => void;
  /** Its beats, on the monotonic clock the pipeline's receive times use. */
  clock: Pick<Clock, "monotonic" | "sleep">;
}

/** What is tracked: the received message (its identity is the key, not its long handle). */
export type Watched = { readonly receiptHandle: string };

interface Tracked {
  message: Watched;
  receiptHandle: string;
  receivedAt: number;
  visibleUntil: number;
}

export class VisibilityHeartbeat {
  readonly #options: HeartbeatOptions;
  // Keyed by the message object: hashing a receipt handle (hundreds of characters, a new
  // string per receive) was most of what tracking a message cost.
  readonly #tracked = new Map<Watched, Tracked>();
  /** Messages whose receipt SQS called stale: not to be submitted. */
  readonly #stale = new WeakSet<Watched>();
  readonly #clock: Pick<Clock, "monotonic" | "sleep">;

  constructor(options: HeartbeatOptions) {
    this.#options = options;
    this.#clock = options.clock;
  }

  get size(): number {
    return this.#tracked.size;
  }

  /** Starts watching a message received at `receivedAt` (ms) with the queue's visibility. */
  track(message: Watched, receivedAt: number, visibilitySeconds: number): void {
    this.#tracked.set(message, {
      message,
      receiptHandle: message.receiptHandle,
      receivedAt,
      visibleUntil: receivedAt + visibilitySeconds * 1000,
    });
  }

  /** SQS called this message's receipt stale: it was received again elsewhere. */
  isStale(message: Watched): boolean {
    return this.#stale.has(message);
  }

  /** Stops watching (before the message is settled): the object given to track(). */
  untrack(message: Watched): void {
    this.#tracked.delete(message);
  }

  /** Extends every message that is about to become visible; returns how many. */
  beat(): number {
    const now = this.#clock.monotonic();
    const vt = this.#options.visibilityTimeoutSeconds;
    const lead = this.#options.leadMs ?? Math.max(2000, (vt * 1000) / 2);
    let count = 0;
    for (const entry of this.#tracked.values()) {
      if (entry.visibleUntil - now > lead) continue;
      const seconds = Math.min(vt, maxVisibilitySeconds((now - entry.receivedAt) / 1000));
      if (seconds <= 0) continue; // past 12 h nothing can keep it
      // Optimistic while it is on its way: a second beat must not send the same extension.
      const before = entry.visibleUntil;
      entry.visibleUntil = now + seconds * 1000;
      count++;
      this.#options.onExtend?.();
      this.#options.alsoExtend?.(entry.receiptHandle, seconds);
      this.#options.extend(entry.receiptHandle, seconds).then(
        (result) => {
          if (result === "stale") this.#staleNow(entry);
        },
        (error) => {
          // Not extended after all: the next beat tries again.
          if (entry.visibleUntil === now + seconds * 1000) entry.visibleUntil = before;
          this.#lost(entry, (error as Error).message);
        },
      );
    }
    return count;
  }

  /** Beats every `intervalMs` until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const interval = this.#options.intervalMs ?? 1000;
    while (!signal.aborted) {
      this.beat();
      try {
        await this.#clock.sleep(interval, signal);
      } catch {
        return;
      }
    }
  }

  #staleNow(entry: Tracked): void {
    if (!this.#tracked.has(entry.message)) return; // settled meanwhile
    this.#lost(entry, "receipt handle is stale");
    this.#stale.add(entry.message);
    // The handle names no receive any more: extending it again can only fail again.
    this.#tracked.delete(entry.message);
    this.#options.onStale?.(entry.receiptHandle);
  }

  #lost(entry: Tracked, reason: string): void {
    if (!this.#tracked.has(entry.message)) return; // settled meanwhile: nothing lost
    this.#options.onLost?.(entry.receiptHandle, reason);
  }
}
