/**
 * Micro-batching: callers add one item at a time and get one result back,
 * while the work runs in batches (enrichment ids, SQS deletes, visibility
 * changes).
 */

import type { Clock } from "./clock.ts";

/** Options for {@linkcode Batcher}. */
export interface BatcherOptions<I, O> {
  /** Sets the timer of a partly filled batch. */
  clock: Pick<Clock, "timer">;
  /** Flush when this many items are queued; also the largest batch. Default 10. */
  maxSize?: number;
  /** Flush this long after the first queued item, in ms; 0 = next macrotask. Default 5. */
  maxWaitMs?: number;
  /**
   * Handles one batch; returns one result per item, in order: the value, or an
   * Error instance for that item. If it throws, every item of the batch
   * rejects with that error.
   */
  run: (items: I[]) => Promise<Array<O | Error>>;
  /** Cap on concurrent `run()` calls; batches beyond it wait. Default Infinity. */
  maxConcurrentBatches?: number;
}

interface Entry<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (reason: unknown) => void;
  /** The promise add() returned to the caller. */
  promise: Promise<O>;
}

const ignore = () => {};

/** Collects items into batches by size and time and hands each batch to `run`. */
export class Batcher<I, O> {
  readonly #maxSize: number;
  readonly #maxWaitMs: number;
  readonly #maxConcurrent: number;
  readonly #run: (items: I[]) => Promise<Array<O | Error>>;
  #queue: Entry<I, O>[] = [];
  readonly #clock: Pick<Clock, "timer">;
  /** Cancels the pending timer of a partly filled batch. */
  #timer: (() => void) | undefined;
  /** The queued items have waited long enough (timer fired or flush asked). */
  #due = false;
  readonly #inFlight = new Set<Promise<void>>();

  /** Creates a batcher; throws a RangeError for a `maxSize` or `maxConcurrentBatches` below 1. */
  constructor(options: BatcherOptions<I, O>) {
    this.#maxSize = options.maxSize ?? 10;
    this.#maxWaitMs = options.maxWaitMs ?? 5;
    this.#maxConcurrent = options.maxConcurrentBatches ?? Infinity;
    this.#run = options.run;
    this.#clock = options.clock;
    if (!Number.isInteger(this.#maxSize) || this.#maxSize < 1) {
      throw new RangeError(
        `Cannot use Batcher maxSize: received ${this.#maxSize}, expected an integer >= 1`,
      );
    }
    if (!(this.#maxConcurrent >= 1)) {
      throw new RangeError(
        `Cannot use Batcher maxConcurrentBatches: received ${this.#maxConcurrent}, expected a number >= 1`,
      );
    }
  }

  /** Items queued and not yet handed to `run`. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Queues one item; resolves with its result, rejects with its Error. */
  add(item: I): Promise<O> {
    let resolve!: (value: O) => void, reject!: (reason: unknown) => void;
    const promise = new Promise<O>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#queue.push({ item, resolve, reject, promise });
    if (this.#timer === undefined && !this.#due) {
      this.#timer = this.#clock.timer(this.#maxWaitMs, () => {
        this.#timer = undefined;
        this.#due = true;
        this.#pump();
      });
    }
    this.#pump();
    return promise;
  }

  /**
   * Runs everything queued now; resolves when those items and all batches in
   * flight (including earlier ones) have settled.
   */
  async flush(): Promise<void> {
    // The queued items' own promises may reject (their callers handle that): flush() waits
    // on promises derived from them that do not.
    const waitFor = [...this.#inFlight, ...this.#queue.map((e) => e.promise.then(ignore, ignore))];
    if (this.#queue.length > 0) {
      this.#due = true;
      this.#pump();
    }
    await Promise.all(waitFor);
  }

  /** Starts as many batches as are ready and allowed. */
  #pump(): void {
    while (
      this.#queue.length > 0 &&
      this.#inFlight.size < this.#maxConcurrent &&
      (this.#due || this.#queue.length >= this.#maxSize)
    ) {
      const batch = this.#queue.splice(0, this.#maxSize);
      const running = this.#runBatch(batch).finally(() => {
        this.#inFlight.delete(running);
        this.#pump();
      });
      this.#inFlight.add(running);
    }
    if (this.#queue.length === 0) {
      // The next item starts a fresh wait.
      this.#due = false;
      this.#timer?.();
      this.#timer = undefined;
    }
  }

  async #runBatch(batch: Entry<I, O>[]): Promise<void> {
    let results: Array<O | Error>;
    try {
      results = await this.#run(batch.map((e) => e.item));
    } catch (err) {
      for (const entry of batch) entry.reject(err);
      return;
    }
    if (!Array.isArray(results) || results.length !== batch.length) {
      const err = new Error(
        `Cannot match the batch's results: received ${
          Array.isArray(results) ? results.length : "no"
        } results, expected ${batch.length}, one per item`,
      );
      for (const entry of batch) entry.reject(err);
      return;
    }
    batch.forEach((entry, i) => {
      const result = results[i] as O | Error;
      if (result instanceof Error) entry.reject(result);
      else entry.resolve(result);
    });
  }
}
