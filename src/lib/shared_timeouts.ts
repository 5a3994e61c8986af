/**
 * Request timeouts that share timers: `onTimeout(ms, fn)` calls `fn` about `ms` from now
 * (never early, at most ms/20 and 100 ms late) unless the returned function is called first.
 * Deadlines are rounded up to a step and every request due in the same step waits on one
 * timer, so a request costs a Set entry instead of a timer of its own: under Deno a
 * setTimeout/clearTimeout pair was ~4 µs of the worker's CPU per message. A step's timer is
 * cancelled as soon as its last request is done, so nothing outlives the work.
 */
import type { Clock } from "./clock.ts";

interface Step {
  callbacks: Set<() => void>;
  cancel: () => void;
}

export class SharedTimeouts {
  readonly #clock: Pick<Clock, "monotonic" | "timer">;
  readonly #steps = new Map<number, Step>();

  constructor(clock: Pick<Clock, "monotonic" | "timer">) {
    this.#clock = clock;
  }

  onTimeout(ms: number, fn: () => void): () => void {
    const stepMs = Math.min(100, Math.max(1, Math.floor(ms / 20)));
    const now = this.#clock.monotonic();
    const due = Math.ceil((now + ms) / stepMs) * stepMs;
    let entry = this.#steps.get(due);
    if (entry === undefined) {
      const callbacks = new Set<() => void>();
      const cancel = this.#clock.timer(due - now, () => {
        this.#steps.delete(due);
        for (const callback of callbacks) callback();
      });
      entry = { callbacks, cancel };
      this.#steps.set(due, entry);
    }
    const mine = entry;
    const callback = () => fn();
    mine.callbacks.add(callback);
    return () => {
      if (!mine.callbacks.delete(callback) || mine.callbacks.size > 0) return;
      mine.cancel();
      if (this.#steps.get(due) === mine) this.#steps.delete(due);
    };
  }
}

const byClock = new WeakMap<object, SharedTimeouts>();

/** The timeouts of one clock: every client on it shares the steps' timers. */
export function timeoutsOf(clock: Pick<Clock, "monotonic" | "timer">): SharedTimeouts {
  let timeouts = byClock.get(clock);
  if (!timeouts) byClock.set(clock, timeouts = new SharedTimeouts(clock));
  return timeouts;
}
