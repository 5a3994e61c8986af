/**
 * `onAbort(signal, fn)`: calls `fn` once when `signal` aborts (at once when it already has) and
 * returns a function that forgets it. Every in-flight message's requests, waits and slot queues
 * listen to the same shutdown signal; EventTarget's addEventListener and removeEventListener
 * scan all of that signal's listeners (Deno's and Bun's both), so with hundreds in flight each
 * message paid an O(in-flight) scan several times. Here one listener per signal serves a Set.
 */
const watchers = new WeakMap<AbortSignal, Set<() => void>>();

const forgetNothing = () => {};

export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return forgetNothing;
  }
  let callbacks = watchers.get(signal);
  if (callbacks === undefined) {
    const set = new Set<() => void>();
    watchers.set(signal, set);
    signal.addEventListener("abort", () => {
      watchers.delete(signal);
      for (const callback of set) callback();
      set.clear();
    }, { once: true });
    callbacks = set;
  }
  // A wrapper per call: the same `fn` watched twice is two entries, forgotten one at a time.
  const entry = () => fn();
  callbacks.add(entry);
  const set = callbacks;
  return () => {
    set.delete(entry);
  };
}
