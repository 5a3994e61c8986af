import assert from "node:assert/strict";
import { RateLimiter, type RateLimiterSettings } from "../../src/flow/rate_limiter.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { FakeClock } from "../support/fake_clock.ts";

const START = 1_000_000;

function rig(settings: Partial<RateLimiterSettings> = {}) {
  const clock = new FakeClock({ start: START, auto: false });
  const metrics = createSluiceMetrics();
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: "info",
    write: (line) => lines.push(JSON.parse(line)),
    clock: { now: () => 0 },
  });
  const limiter = new RateLimiter(
    { limit: 3, windowMs: 1000, maxInFlight: 100, ...settings },
    { clock, logger, metrics },
  );
  const signal = new AbortController().signal;
  /** Submission times (ms after START) by key, in the order they were admitted. */
  const admitted: Array<[string, string, number]> = [];
  const deferred: Array<[string, number]> = [];
  let n = 0;
  /** Admits and, given the slot, submits at once, answered at once. */
  const admit = (key: string, id = `id-${n++}`, abort = signal) =>
    limiter.admit(key, id, abort).then((admission) => {
      if (admission.kind === "deferred") {
        deferred.push([id, admission.seconds]);
        return admission;
      }
      admitted.push([key, id, clock.now() - START]);
      void admission.next(signal);
      admission.done();
      admission.release();
      return admission;
    });
  const flush = async () => {
    for (let i = 0; i < 4; i++) await Promise.resolve();
  };
  /** Moves time 1 ms at a time so every timer fires, and every admission is seen, at its time. */
  const to = async (ms: number) => {
    await flush();
    while (clock.now() - START < ms) {
      clock.advance(1);
      await flush();
    }
  };
  return { clock, metrics, lines, limiter, admit, admitted, deferred, to };
}

const metric = (r: ReturnType<typeof rig>, name: string) => {
  const line = r.metrics.registry.render().split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1]);
};

Deno.test("rate limiter: N at once, the rest wait for their slots in the sliding window", async () => {
  const r = rig();
  const all = Array.from({ length: 7 }, () => r.admit("u1"));
  await r.to(3000);
  await Promise.all(all);
  assert.deepEqual(r.admitted.map(([, , t]) => t), [0, 0, 0, 1000, 1000, 1000, 2000]);
  assert.equal(r.deferred.length, 0);
  assert.equal(metric(r, "sluice_rate_limited_total"), 4);
  assert.equal(metric(r, "sluice_rate_limit_held"), 0);
});

Deno.test("rate limiter: a burst at a fixed bucket's edge waits a whole window", async () => {
  const r = rig();
  await r.to(999);
  const first = [r.admit("u1"), r.admit("u1"), r.admit("u1")];
  await r.to(1000);
  // A fixed one-second bucket would start afresh at 1000 ms and let these through at once.
  const second = [r.admit("u1"), r.admit("u1"), r.admit("u1")];
  await r.to(2100);
  await Promise.all([...first, ...second]);
  assert.deepEqual(r.admitted.map(([, , t]) => t), [999, 999, 999, 1999, 1999, 1999]);
});

Deno.test("rate limiter: waits resume in arrival order per key", async () => {
  const r = rig({ limit: 1 });
  const waits = [];
  // Arrivals spread over the first window: each joins the back of the line.
  for (const [i, id] of ["a", "b", "c", "d", "e"].entries()) {
    await r.to(i * 100);
    waits.push(r.admit("u1", id));
  }
  await r.to(5000);
  await Promise.all(waits);
  assert.deepEqual(r.admitted.map(([, id, t]) => [id, t]), [
    ["a", 0],
    ["b", 1000],
    ["c", 2000],
    ["d", 3000],
    ["e", 4000],
  ]);
});

Deno.test("rate limiter: a new arrival does not pass a message already waiting when the window opens", async () => {
  const r = rig({ limit: 1 });
  const early = r.admit("u1", "early");
  const waiting = r.admit("u1", "waiting");
  await r.to(1000);
  const late = r.admit("u1", "late");
  await r.to(2500);
  await Promise.all([early, waiting, late]);
  assert.deepEqual(r.admitted.map(([, id]) => id), ["early", "waiting", "late"]);
});

Deno.test("rate limiter: keys are independent: one key's wait does not delay another", async () => {
  const r = rig({ limit: 1 });
  const hot = [r.admit("hot"), r.admit("hot"), r.admit("hot")];
  const quiet = r.admit("quiet");
  await r.to(0);
  assert.deepEqual(r.admitted.map(([key, , t]) => [key, t]), [["hot", 0], ["quiet", 0]]);
  await quiet;
  await r.to(2000);
  await Promise.all(hot);
});

Deno.test("rate limiter: a wait longer than the in-memory limit is deferred to its slot, and that slot is kept for it", async () => {
  const r = rig({ limit: 2, maxWaitMs: 1500 });
  for (let i = 0; i < 6; i++) void r.admit("u1", `m${i}`);
  await r.to(0);
  // m0 m1 now; m2 m3 wait 1000 ms in memory; m4 m5's slot is at 2000 ms: deferred 2 s.
  assert.deepEqual(r.admitted.map(([, id]) => id), ["m0", "m1"]);
  assert.deepEqual(r.deferred, [["m4", 2], ["m5", 2]]);
  // A newcomer at 1500 ms lines up behind the deferred ones' kept slots.
  await r.to(1500);
  const newcomer = r.admit("u1", "newcomer");
  // m4 and m5 come back at their slot and take it.
  await r.to(2000);
  await Promise.all([r.admit("u1", "m4"), r.admit("u1", "m5")]);
  await r.to(3000);
  await newcomer;
  assert.deepEqual(r.admitted.map(([, id, t]) => [id, t]), [
    ["m0", 0],
    ["m1", 0],
    ["m2", 1000],
    ["m3", 1000],
    ["m4", 2000],
    ["m5", 2000],
    ["newcomer", 3000],
  ]);
});

Deno.test("rate limiter: one key's held messages use at most its share of MAX_IN_FLIGHT", async () => {
  const r = rig({ limit: 1, maxInFlight: 40, keyShare: 0.1, maxWaitMs: 60_000 });
  for (let i = 0; i < 10; i++) void r.admit("hot");
  await r.to(0);
  // 1 admitted, 4 (10 % of 40) held here, the other 5 deferred: intake keeps its slots.
  assert.equal(r.admitted.length, 1);
  assert.equal(r.limiter.held, 4);
  assert.equal(r.deferred.length, 5);
  assert.equal(metric(r, "sluice_rate_limit_held"), 4);
  // Another key is served at once, and may hold its own share.
  void r.admit("other");
  void r.admit("other");
  await r.to(1);
  assert.deepEqual(r.admitted.map(([key]) => key), ["hot", "other"]);
  assert.equal(r.limiter.held, 5);
});

Deno.test("rate limiter: all keys' held messages together stay within half of MAX_IN_FLIGHT", async () => {
  const r = rig({ limit: 1, maxInFlight: 20, keyShare: 0.5, totalShare: 0.5 });
  for (const key of ["a", "b", "c"]) for (let i = 0; i < 10; i++) void r.admit(key);
  await r.to(0);
  assert.equal(r.limiter.held, 10);
  assert.equal(r.admitted.length, 3);
});

Deno.test("rate limiter: a stop ends a wait: its place is given up, the next one moves up", async () => {
  const r = rig({ limit: 1 });
  void r.admit("u1", "first");
  const stop = new AbortController();
  const stopped = r.admit("u1", "stopped", stop.signal);
  const next = r.admit("u1", "next");
  await r.to(10);
  stop.abort(new Error("grace over"));
  await assert.rejects(stopped, /grace over/);
  await r.to(1000);
  await next;
  assert.deepEqual(r.admitted.map(([, id, t]) => [id, t]), [["first", 0], ["next", 1000]]);
  assert.equal(r.limiter.held, 0);
});

Deno.test("rate limiter: keys idle for a window are forgotten; the key count is bounded", async () => {
  const r = rig({ limit: 2 });
  for (let i = 0; i < 50; i++) await r.admit(`k${i}`);
  assert.equal(r.limiter.keys, 50);
  assert.equal(metric(r, "sluice_rate_limit_keys"), 50);
  await r.to(1000);
  for (let i = 0; i < 30; i++) void r.admit("busy");
  assert.ok(r.limiter.keys < 10, `${r.limiter.keys} keys kept after a window idle`);
  // limit 2_000_000: the timestamp budget allows two keys; a third pushes out the oldest.
  const big = rig({ limit: 2_000_000 });
  for (const key of ["a", "b", "c", "d"]) await big.admit(key);
  assert.equal(big.limiter.keys, 2);
});

Deno.test("rate limiter: one info line when a key starts being limited and one when it stops", async () => {
  const r = rig({ limit: 1 });
  for (let i = 0; i < 4; i++) void r.admit("u1");
  await r.to(5000);
  await r.admit("u1");
  const said = r.lines.map((l) => [l.msg, l.rate_limit_key]);
  assert.deepEqual(said, [
    ["a rate-limit key reached its limit: its excess waits for its slots", "u1"],
    ["a rate-limit key is under its limit again", "u1"],
  ]);
  // Flapping within a minute is not said again.
  for (let i = 0; i < 3; i++) void r.admit("u1");
  await r.to(9000);
  await r.admit("u1");
  assert.equal(r.lines.length, 2);
});

Deno.test("rate limiter: a slot counts from its answer, and until then blocks the next", async () => {
  const r = rig({ limit: 1 });
  const first = await r.limiter.admit("u1", "first", new AbortController().signal);
  assert.equal(first.kind, "slot");
  const next = r.admit("u1", "next");
  // The first try waits 600 ms in the validator's queue and on the wire: the window starts at
  // its answer, so the validator cannot see the next one within a window of it.
  if (first.kind === "slot") await first.next(new AbortController().signal);
  await r.to(600);
  if (first.kind === "slot") first.done();
  await r.to(1599);
  assert.equal(r.admitted.length, 0);
  await r.to(1600);
  await next;
  assert.deepEqual(r.admitted.map(([, id, t]) => [id, t]), [["next", 1600]]);
});

Deno.test("rate limiter: a slot never sent (stale, lock lost, shutdown) is given back to the next in line", async () => {
  const r = rig({ limit: 1 });
  const first = await r.limiter.admit("u1", "first", new AbortController().signal);
  const next = r.admit("u1", "next");
  await r.to(300);
  if (first.kind === "slot") first.release();
  await r.to(301);
  await next;
  assert.deepEqual(r.admitted.map(([, id, t]) => [id, t]), [["next", 300]]);
});

Deno.test("rate limiter: a retry of a submission waits for a slot of its own", async () => {
  const r = rig({ limit: 2 });
  const signal = new AbortController().signal;
  const ticket = await r.limiter.admit("u1", "retried", signal);
  assert.equal(ticket.kind, "slot");
  if (ticket.kind !== "slot") return;
  await ticket.next(signal);
  ticket.done(); // the first try, answered 503 at 0 ms
  void r.admit("u1", "other"); // takes the second place of the window at 0 ms
  let retried = -1;
  void ticket.next(signal).then(() => retried = r.clock.now() - START);
  await r.to(999);
  assert.equal(retried, -1);
  await r.to(1000);
  assert.equal(retried, 1000);
  ticket.done();
  ticket.release();
  assert.equal(r.limiter.held, 0);
});

Deno.test("rate limiter: a key whose deferred messages never came back is forgotten too", async () => {
  const r = rig({ limit: 1, maxWaitMs: 0 });
  void r.admit("gone");
  void r.admit("gone"); // deferred 1 s; never comes back (another worker took it)
  await r.to(0);
  assert.equal(r.deferred.length, 1);
  await r.to(8000);
  void r.admit("other");
  await r.to(8001);
  assert.equal(r.limiter.keys, 1);
});
