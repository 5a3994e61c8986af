import assert from "node:assert/strict";
import { ByteBudget } from "../../src/lib/byte_budget.ts";

Deno.test("byte budget: takers within the limit pass at once, the next waits until bytes come back", async () => {
  const budget = new ByteBudget(100);
  await budget.take(60);
  await budget.take(40);
  assert.equal(budget.spent, true);
  let passed = false;
  const waiting = budget.take(10).then(() => passed = true);
  await Promise.resolve();
  assert.equal(passed, false);
  budget.give(60);
  await waiting;
  assert.equal(budget.used, 50);
  assert.equal(budget.spent, false);
});

Deno.test("byte budget: one taker larger than the whole budget passes when nothing is held", async () => {
  const budget = new ByteBudget(100);
  await budget.take(500);
  assert.equal(budget.used, 500);
  let passed = false;
  const small = budget.take(1).then(() => passed = true);
  await Promise.resolve();
  assert.equal(passed, false, "nothing else while it is held");
  budget.give(500);
  await small;
});

Deno.test("byte budget: waiters pass first come first served, a small one does not overtake", async () => {
  const budget = new ByteBudget(100);
  await budget.take(90);
  const order: string[] = [];
  const big = budget.take(50).then(() => order.push("big"));
  const small = budget.take(5).then(() => order.push("small"));
  budget.give(90);
  await Promise.all([big, small]);
  assert.deepEqual(order, ["big", "small"]);
});

Deno.test("byte budget: resize to the real size lets waiters in; an abort leaves the queue", async () => {
  const budget = new ByteBudget(100);
  await budget.take(100);
  const stop = new AbortController();
  const aborted = budget.take(50, stop.signal);
  stop.abort(new Error("stopped"));
  await assert.rejects(aborted, /stopped/);
  const next = budget.take(50);
  budget.resize(100, 10);
  await next;
  assert.equal(budget.used, 60);
  await assert.rejects(budget.take(1, stop.signal), /stopped/);
});
