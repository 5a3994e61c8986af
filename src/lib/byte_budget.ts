/**
 * A budget of bytes held at once (the fetched S3 payloads of the messages in work): `take` waits,
 * first come first served, until the bytes fit. One taker larger than the whole budget passes
 * when nothing else is held, so no size ever waits forever.
 */

interface Waiter {
  bytes: number;
  resolve: () => void;
}

export class ByteBudget {
  readonly limit: number;
  #used = 0;
  #waiters: Waiter[] = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** Whether a taker would wait now (intake pauses on it). */
  get spent(): boolean {
    return this.#used >= this.limit || this.#waiters.length > 0;
  }

  #fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.limit;
  }

  /** Holds `bytes` once they fit; rejects with `signal.reason` when it aborts first. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#waiters.length === 0 && this.#fits(bytes)) {
      this.#used += bytes;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        resolve: () => {
          signal?.removeEventListener("abort", abort);
          resolve();
        },
      };
      const abort = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        this.#wake();
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", abort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * Changes what a holder holds from `from` to `to` bytes (the real size once known): more is
   * held at once, over the limit if need be (intake then waits); less lets waiters in.
   */
  resize(from: number, to: number): void {
    this.#used += to - from;
    if (to < from) this.#wake();
  }

  /** Gives `bytes` back. */
  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
    this.#wake();
  }

  #wake(): void {
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0]!.bytes)) {
      const next = this.#waiters.shift()!;
      this.#used += next.bytes;
      next.resolve();
    }
  }
}
