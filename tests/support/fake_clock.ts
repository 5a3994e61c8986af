/**
 * One fake clock for every test that needs time: `now`, `sleep` and `advance`.
 * With `auto` (the default) a sleep moves time forward at once, so code that waits
 * runs without waiting; with `auto: false` a sleep resolves when `advance` passes
 * its deadline. Every sleep's length is kept in `sleeps`.
 */
export interface FakeClockOptions {
  /** Starting time in ms, default 1,000,000. */
  start?: number;
  /** A sleep advances the clock itself, default true. */
  auto?: boolean;
}

interface Sleeper {
  until: number;
  resolve: () => void;
}

export class FakeClock {
  readonly sleeps: number[] = [];
  readonly #auto: boolean;
  #t: number;
  #sleepers: Sleeper[] = [];

  constructor(options: FakeClockOptions = {}) {
    this.#t = options.start ?? 1_000_000;
    this.#auto = options.auto ?? true;
  }

  now = (): number => this.#t;

  /** Moves time forward and wakes the sleepers it passes; returns the new time. */
  advance = (ms: number): number => {
    this.#t += ms;
    const due = this.#sleepers.filter((s) => s.until <= this.#t);
    this.#sleepers = this.#sleepers.filter((s) => s.until > this.#t);
    for (const s of due) s.resolve();
    return this.#t;
  };

  /** Jumps to an absolute time (forward only), waking the sleepers it passes. */
  set = (ms: number): number => this.advance(Math.max(0, ms - this.#t));

  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.sleeps.push(ms);
    if (this.#auto) {
      this.#t += Math.max(0, ms);
      return Promise.resolve();
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const sleeper = { until: this.#t + ms, resolve };
    this.#sleepers.push(sleeper);
    signal?.addEventListener("abort", () => {
      this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
      reject(signal.reason);
    }, { once: true });
    return promise;
  };
}
