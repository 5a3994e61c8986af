import assert from "node:assert/strict";
import { AdaptiveLimit, adaptiveSemaphore } from "../../src/lib/adaptive_limit.ts";
import { HttpError } from "../../src/lib/errors.ts";
import { FakeClock } from "../support/fake_clock.ts";

async function tick(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

Deno.test("adaptive limit: AdaptiveLimit defaults and clamping of initial", () => {
  assert.equal(new AdaptiveLimit().limit, 8);
  assert.equal(new AdaptiveLimit({ max: 4 }).limit, 4);
  assert.equal(new AdaptiveLimit({ max: 10, initial: 100 }).limit, 10);
  assert.equal(new AdaptiveLimit({ min: 5, initial: 2 }).limit, 5);
  assert.throws(() => new AdaptiveLimit({ min: 0 }), RangeError);
  assert.throws(() => new AdaptiveLimit({ min: 5, max: 4 }), RangeError);
  assert.throws(() => new AdaptiveLimit({ backoffRatio: 1 }), RangeError);
});

Deno.test("adaptive limit: AdaptiveLimit grows by 1 per `limit` healthy successes", () => {
  const changes: number[] = [];
  const l = new AdaptiveLimit({ initial: 4, onChange: (n) => changes.push(n) });
  for (let i = 0; i < 3; i++) l.onSuccess(10);
  assert.equal(l.limit, 4);
  l.onSuccess(10);
  assert.equal(l.limit, 5);
  for (let i = 0; i < 4; i++) l.onSuccess(10);
  assert.equal(l.limit, 5);
  l.onSuccess(10);
  assert.equal(l.limit, 6);
  assert.deepEqual(changes, [5, 6]);
});

Deno.test("adaptive limit: AdaptiveLimit never grows past max", () => {
  const l = new AdaptiveLimit({ initial: 2, max: 5 });
  for (let i = 0; i < 1000; i++) l.onSuccess(10);
  assert.equal(l.limit, 5);
});

Deno.test("adaptive limit: AdaptiveLimit does not grow on congested latency", () => {
  const l = new AdaptiveLimit({ initial: 2, latencyTolerance: 2.5, latencySlackMs: 0 });
  l.onSuccess(10); // baseline 10 ms
  for (let i = 0; i < 20; i++) l.onSuccess(26); // above 2.5 x 10
  assert.equal(l.limit, 2);
  l.onSuccess(25); // within tolerance: 2 healthy successes now
  assert.equal(l.limit, 3);
});

Deno.test("adaptive limit: AdaptiveLimit treats latency within the slack of a ~0 ms best as healthy", () => {
  const l = new AdaptiveLimit({ initial: 2 });
  l.onSuccess(0); // loopback: the best is 0 ms
  l.onSuccess(3);
  l.onSuccess(40); // 40 ms is within the default 100 ms slack
  assert.equal(l.limit, 3);
  for (let i = 0; i < 10; i++) l.onSuccess(150); // past best + slack: congestion
  assert.equal(l.limit, 3);
});

Deno.test("adaptive limit: AdaptiveLimit does not grow when far below its limit", () => {
  const l = new AdaptiveLimit({ initial: 8 });
  for (let i = 0; i < 100; i++) l.onSuccess(10, 3);
  assert.equal(l.limit, 8, "3 in flight of 8: the limit is not the bottleneck");
  for (let i = 0; i < 8; i++) l.onSuccess(10, 4);
  assert.equal(l.limit, 9);
});

Deno.test("adaptive limit: AdaptiveLimit shrinks multiplicatively, once per burst, not below min", () => {
  const changes: number[] = [];
  const l = new AdaptiveLimit({ initial: 10, min: 3, onChange: (n) => changes.push(n) });
  l.onOverload();
  assert.equal(l.limit, 7);
  for (let i = 0; i < 9; i++) l.onOverload(); // the rest of the 10 calls then in flight
  assert.equal(l.limit, 7, "a burst of failures counts once");
  l.onOverload();
  assert.equal(l.limit, 4);
  // Completions also end the hold-off (6 = the other calls in flight at limit 7);
  // the first 4 of these successes also grow the limit to 5.
  for (let i = 0; i < 6; i++) l.onSuccess(10);
  assert.equal(l.limit, 5);
  l.onOverload();
  assert.equal(l.limit, 3, "floor(5 * 0.7)");
  for (let i = 0; i < 4; i++) l.onSuccess(10); // ends the hold-off; grows to 4
  assert.equal(l.limit, 4);
  l.onOverload();
  assert.equal(l.limit, 3, "floor(4 * 0.7) = 2 is below min");
  assert.deepEqual(changes, [7, 4, 5, 3, 4, 3]);
});

Deno.test("adaptive limit: adaptiveSemaphore shrinks its semaphore on overload errors", async () => {
  const sem = adaptiveSemaphore({ initial: 4, clock: { monotonic: () => 0 } });
  const gates = Array.from({ length: 4 }, () => Promise.withResolvers<void>());
  const calls = gates.map((g) => sem.run(() => g.promise));
  await tick();
  assert.equal(sem.active, 4);
  for (const g of gates) g.reject(new HttpError("validator", 429, ""));
  const settled = await Promise.allSettled(calls);
  assert.ok(settled.every((s) => s.status === "rejected"), "errors are rethrown");
  assert.equal(sem.limit, 2, "floor(4 * 0.7), once for the burst");

  const held = Array.from({ length: 3 }, () => Promise.withResolvers<void>());
  const next = held.map((g) => sem.run(() => g.promise));
  await tick();
  assert.equal(sem.active, 2, "the semaphore follows the new limit");
  assert.equal(sem.pending, 1);
  for (const g of held) g.resolve();
  await Promise.all(next);
  assert.equal(sem.active, 0);
});

Deno.test("adaptive limit: adaptiveSemaphore ignores errors that are not overload", async () => {
  const sem = adaptiveSemaphore({ initial: 4, clock: { monotonic: () => 0 } });
  for (let i = 0; i < 5; i++) {
    await assert.rejects(sem.run(() => Promise.reject(new HttpError("validator", 400, ""))));
  }
  assert.equal(sem.limit, 4);
  const custom = adaptiveSemaphore({
    initial: 4,
    isOverload: () => true,
    clock: { monotonic: () => 0 },
  });
  await assert.rejects(custom.run(() => Promise.reject(new Error("any"))));
  assert.equal(custom.limit, 2);
});

Deno.test("adaptive limit: adaptiveSemaphore grows under saturation and measures latency with now()", async () => {
  const clock = new FakeClock({ start: 0 });
  const sem = adaptiveSemaphore({ initial: 2, latencySlackMs: 50, clock });
  /** Runs `n` rounds of 2 concurrent calls that each take `ms` on the fake clock. */
  const rounds = async (n: number, ms: number) => {
    for (let i = 0; i < n; i++) {
      const gates = [Promise.withResolvers<void>(), Promise.withResolvers<void>()];
      const calls = gates.map((g) => sem.run(() => g.promise));
      await tick();
      clock.advance(ms);
      for (const g of gates) g.resolve();
      await Promise.all(calls);
    }
  };
  await rounds(1, 10); // baseline 10 ms; 2 successes at limit 2 -> 3
  assert.equal(sem.limit, 3);
  await rounds(5, 100); // 10x the baseline: congestion, no growth
  assert.equal(sem.limit, 3);
  await rounds(2, 12); // 4 healthy successes (2 in flight of 3) -> 4
  assert.equal(sem.limit, 4);
});

Deno.test("adaptive limit: adaptiveSemaphore run rejects with signal.reason when aborted while waiting", async () => {
  const sem = adaptiveSemaphore({ initial: 1, clock: { monotonic: () => 0 } });
  const gate = Promise.withResolvers<void>();
  const first = sem.run(() => gate.promise);
  const controller = new AbortController();
  const reason = new Error("stop");
  const second = sem.run(() => Promise.resolve(), controller.signal);
  controller.abort(reason);
  await assert.rejects(second, (err) => err === reason);
  gate.resolve();
  await first;
  assert.equal(sem.pending, 0);
});

Deno.test("adaptive limit: adaptiveSemaphore never starts a queued call granted in the turn the signal aborts", async () => {
  const stop = new AbortController();
  // The limit grows 1 → 2 when the first call succeeds: that grants the queued call a slot,
  // and the grace ends in the same turn (onChange runs right after the grant).
  const limiter = adaptiveSemaphore({
    clock: { monotonic: () => 0 },
    max: 2,
    initial: 1,
    onChange: () => stop.abort(new Error("grace over")),
  });
  let finish: (() => void) | undefined;
  const first = limiter.run(() => new Promise<void>((resolve) => finish = resolve));
  let started = 0;
  const queued = limiter.run(() => {
    started++;
    return Promise.resolve();
  }, stop.signal);
  while (!finish) await Promise.resolve();
  finish();
  await first;
  await assert.rejects(queued, /grace over/);
  assert.equal(started, 0);
  assert.equal(limiter.limit, 2);
  assert.equal(limiter.active, 0);
});
