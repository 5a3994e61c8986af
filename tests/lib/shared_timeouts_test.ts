import assert from "node:assert/strict";
import { onTimeout } from "../../src/lib/shared_timeouts.ts";

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("shared timeouts: fires after the time, never before, once", async () => {
  const started = performance.now();
  let firedAt = 0, count = 0;
  onTimeout(40, () => {
    firedAt = performance.now();
    count++;
  });
  await wait(120);
  assert.equal(count, 1);
  assert.ok(firedAt - started >= 40, `fired after ${firedAt - started} ms`);
});

Deno.test("shared timeouts: a cancelled one never fires; its step's timer is cleared", async () => {
  // The op sanitizer fails this test if a timer outlives it.
  let fired = 0;
  const cancels = Array.from({ length: 50 }, () => onTimeout(5000, () => fired++));
  cancels.forEach((cancel) => cancel());
  cancels[0]!();
  await wait(10);
  assert.equal(fired, 0);
});

Deno.test("shared timeouts: requests in the same step share it; cancelling one keeps the others", async () => {
  const fired: string[] = [];
  const cancelA = onTimeout(30, () => fired.push("a"));
  onTimeout(30, () => fired.push("b"));
  onTimeout(30, () => fired.push("c"));
  cancelA();
  await wait(100);
  assert.deepEqual(fired.sort(), ["b", "c"]);
});
