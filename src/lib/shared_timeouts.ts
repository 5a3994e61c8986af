/**
 * Request timeouts that share timers: `onTimeout(ms, fn)` calls `fn` about `ms` from now
 * (never early, at most ms/20 and 100 ms late) unless the returned function is called first.
 * Deadlines are rounded up to a step and every request due in the same step waits on one
 * timer, so a request costs a Set entry instead of a timer of its own: under Deno a
 * setTimeout/clearTimeout pair was ~4 µs of the worker's CPU per message. A
 * step's timer is cleared as soon as its last request is done, so nothing outlives the work.
 */
interface Step {
  callbacks: Set<() => void>;
  timer: ReturnType<typeof setTimeout>;
}

const steps = new Map<number, Step>();

export function onTimeout(ms: number, fn: () => void): () => void {
  const step = Math.min(100, Math.max(1, Math.floor(ms / 20)));
  const now = performance.now();
  const due = Math.ceil((now + ms) / step) * step;
  let entry = steps.get(due);
  if (entry === undefined) {
    const callbacks = new Set<() => void>();
    const timer = setTimeout(() => {
      steps.delete(due);
      for (const callback of callbacks) callback();
    }, due - now);
    entry = { callbacks, timer };
    steps.set(due, entry);
  }
  const mine = entry;
  const callback = () => fn();
  mine.callbacks.add(callback);
  return () => {
    if (!mine.callbacks.delete(callback) || mine.callbacks.size > 0) return;
    clearTimeout(mine.timer);
    if (steps.get(due) === mine) steps.delete(due);
  };
}
