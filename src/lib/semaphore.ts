/**
 * A counting semaphore with FIFO waiters, abortable acquisition and a limit
 * that can change at run time (adaptive concurrency).
 */
import { onAbort } from "./on_abort.ts";

/** Options for {@linkcode Semaphore}. */
export interface SemaphoreOptions {
  /** Max concurrent holders; an integer >= 1. */
  limit: number;
}

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (reason: unknown) => void;
  /** Stops watching the signal (lib/on_abort.ts). */
  forget: (() => void) | undefined;
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(
      `Cannot set the semaphore limit: received ${limit}, expected an integer >= 1`,
    );
  }
  return limit;
}

/** Limits how many holders run at once; waiters are served first come, first served. */
export class Semaphore {
  #limit: number;
  #active = 0;
  #waiters: Waiter[] = [];

  /** Creates a semaphore; throws a RangeError if `limit` is not an integer >= 1. */
  constructor(options: SemaphoreOptions) {
    this.#limit = checkLimit(options.limit);
  }

  /** Max concurrent holders. */
  get limit(): number {
    return this.#limit;
  }

  /** Holders right now (may briefly exceed `limit` after it was lowered). */
  get active(): number {
    return this.#active;
  }

  /** Callers waiting for a slot. */
  get pending(): number {
    return this.#waiters.length;
  }

  /**
   * Resolves with a release function (idempotent) once a slot is free; rejects
   * with `signal.reason` if aborted while waiting (and leaves the queue). FIFO.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const release = this.tryAcquire();
    if (release !== undefined) return Promise.resolve(release);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, forget: undefined };
      this.#waiters.push(waiter);
      if (signal) {
        waiter.forget = onAbort(signal, () => {
          const index = this.#waiters.indexOf(waiter);
          if (index !== -1) this.#waiters.splice(index, 1);
          reject(signal.reason);
        });
      }
    });
  }

  /**
   * A slot now, synchronously, when one is free and nobody queues ahead (FIFO); undefined
   * otherwise. Lets a caller skip a promise per call when there is no wait.
   */
  tryAcquire(): (() => void) | undefined {
    return this.#waiters.length === 0 && this.#active < this.#limit ? this.#take() : undefined;
  }

  /**
   * Acquires a slot, runs `fn` and releases the slot in `finally`. A signal that
   * aborts while waiting, or in the same turn the slot is granted, means `fn` never
   * starts (a shutdown must not start queued work).
   */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw signal.reason;
    const release = this.tryAcquire() ?? await this.acquire(signal);
    if (signal?.aborted) {
      release();
      throw signal.reason;
    }
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * Changes the limit at run time; raising it wakes waiters. Lowering it never
   * interrupts current holders: new ones wait until `active` drops below it.
   */
  setLimit(limit: number): void {
    this.#limit = checkLimit(limit);
    this.#drain();
  }

  #take(): () => void {
    this.#active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
      this.#drain();
    };
  }

  #drain(): void {
    while (this.#active < this.#limit) {
      const waiter = this.#waiters.shift();
      if (waiter === undefined) return;
      waiter.forget?.();
      waiter.resolve(this.#take());
    }
  }
}
