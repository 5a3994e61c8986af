import assert from "node:assert/strict";
import { onAbort } from "../../src/lib/on_abort.ts";

Deno.test("on abort: every watcher runs once when the signal aborts, in the order added", () => {
  const controller = new AbortController();
  const calls: string[] = [];
  onAbort(controller.signal, () => calls.push("a"));
  onAbort(controller.signal, () => calls.push("b"));
  controller.abort();
  controller.abort();
  assert.deepEqual(calls, ["a", "b"]);
});

Deno.test("on abort: a forgotten watcher does not run; the same function twice is two entries", () => {
  const controller = new AbortController();
  let count = 0;
  const fn = () => count++;
  const forget = onAbort(controller.signal, fn);
  onAbort(controller.signal, fn);
  forget();
  forget();
  controller.abort();
  assert.equal(count, 1);
});

Deno.test("on abort: an aborted signal calls at once; signals do not share watchers", () => {
  const done = AbortSignal.abort("x");
  let now = 0;
  const forget = onAbort(done, () => now++);
  assert.equal(now, 1);
  forget();
  const a = new AbortController(), b = new AbortController();
  const seen: string[] = [];
  onAbort(a.signal, () => seen.push("a"));
  onAbort(b.signal, () => seen.push("b"));
  b.abort();
  assert.deepEqual(seen, ["b"]);
});

Deno.test("on abort: a watcher added after the abort event still runs at once", () => {
  const controller = new AbortController();
  const seen: string[] = [];
  onAbort(controller.signal, () => {
    seen.push("first");
    onAbort(controller.signal, () => seen.push("late"));
  });
  controller.abort();
  assert.deepEqual(seen, ["first", "late"]);
});
