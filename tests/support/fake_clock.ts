/**
 * One fake clock for every test that needs time: a Clock (src/lib/clock.ts) whose wall
 * and monotonic times are one number, moved by `advance`/`set` or by sleeps. With `auto`
 * (the default) a sleep moves time forward at once, so code that waits runs without
 * waiting; with `auto: false` a sleep resolves when `advance` passes its deadline. Timers
 * fire when time passes them, either way. Every sleep's length is kept in `sleeps`.
 */
import type { Clock } from "../../src/lib/clock.ts";

export interface FakeClockOptions {
  /** Starting time in ms, default 1,000,000. */
  start?: number;
  /** A sleep advances the clock itself, default true. */
  auto?: boolean;
  /** What random() answers, default always 0.5. */
  random?: () => number;
}

interface Due {
  until: number;
  fire: () => void;
}

export class FakeClock implements Clock {
  readonly sleeps: number[] = [];
  readonly #auto: boolean;
  readonly #random: () => number;
  #t: number;
  #due: Due[] = [];

  constructor(options: FakeClockOptions = {}) {
    this.#t = options.start ?? 1_000_000;
    this.#auto = options.auto ?? true;
    this.#random = options.random ?? (() => 0.5);
  }

  now = (): number => this.#t;

  monotonic = (): number => this.#t;

  random = (): number => this.#random();

  /** Moves time forward and fires the sleepers and timers it passes; returns the new time. */
  advance = (ms: number): number => {
    this.#t += Math.max(0, ms);
    const due = this.#due.filter((d) => d.until <= this.#t).sort((a, b) => a.until - b.until);
    this.#due = this.#due.filter((d) => d.until > this.#t);
    for (const d of due) d.fire();
    return this.#t;
  };

  /** Jumps to an absolute time (forward only), firing what it passes. */
  set = (ms: number): number => this.advance(Math.max(0, ms - this.#t));

  /** Timers and sleepers not due yet. */
  get pending(): number {
    return this.#due.length;
  }

  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.sleeps.push(ms);
    if (this.#auto) {
      this.advance(ms);
      return Promise.resolve();
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const entry = { until: this.#t + ms, fire: resolve };
    this.#due.push(entry);
    signal?.addEventListener("abort", () => {
      this.#due = this.#due.filter((d) => d !== entry);
      reject(signal.reason);
    }, { once: true });
    return promise;
  };

  timer = (ms: number, fn: () => void): () => void => {
    const entry = { until: this.#t + ms, fire: fn };
    this.#due.push(entry);
    return () => {
      this.#due = this.#due.filter((d) => d !== entry);
    };
  };
}
