import assert from "node:assert/strict";
import { FleetLine, type FleetLineSettings } from "../../src/flow/fleet_line.ts";
import type { FleetAnswer } from "../../src/flow/rate_table.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { FakeClock } from "../support/fake_clock.ts";

const SETTINGS: FleetLineSettings = {
  limit: 2,
  windowMs: 1000,
  keyHeld: 3,
  totalHeld: 5,
  maxWaitMs: 5000,
};

/** A line over a fake fleet whose answers the test scripts: one per take, in order. */
function rig(answers: Array<FleetAnswer | Error>, settings: Partial<FleetLineSettings> = {}) {
  const clock = new FakeClock({ start: 10_000, auto: false });
  const warnings: string[] = [];
  const asked: Array<[string, number]> = [];
  const held: number[] = [];
  let limited = 0;
  const logger = createLogger({
    level: "warn",
    write: (line) => warnings.push(JSON.parse(line).msg),
    clock,
  });
  const line = new FleetLine({ ...SETTINGS, ...settings }, {
    take: (key) => {
      asked.push([key, clock.now()]);
      const answer = answers.shift() ?? { ok: true };
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
  }, { clock, logger, onLimited: () => limited++, onHeld: (n) => held.push(n) });
  const settle = async (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      for (let i = 0; i < 10; i++) await Promise.resolve();
      clock.advance(10);
    }
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };
  return { clock, line, asked, held, warnings, settle, limited: () => limited };
}

Deno.test("fleet line: a key's messages ask the table one at a time, in arrival order", async () => {
  const r = rig([{ ok: false, at: 10_300 }, { ok: true }, { ok: true }, { ok: true }]);
  const signal = new AbortController().signal;
  const order: string[] = [];
  const admits = ["m1", "m2", "m3"].map((id) =>
    r.line.admit("k", signal, true).then((a) => order.push(`${id}:${a.kind}`))
  );
  await r.settle(400);
  await Promise.all(admits);
  assert.deepEqual(order, ["m1:slot", "m2:slot", "m3:slot"]);
  // The first asked, waited for the time the table named, asked again; the others after it.
  assert.deepEqual(r.asked, [["k", 10_000], ["k", 10_300], ["k", 10_300], ["k", 10_300]]);
  assert.equal(r.limited(), 1);
  assert.equal(r.line.held, 0);
  assert.equal(r.held.at(-1), 0);
});

Deno.test("fleet line: other keys do not wait behind a limited one", async () => {
  const r = rig([{ ok: false, at: 11_000 }, { ok: true }, { ok: true }]);
  const signal = new AbortController().signal;
  const hot = r.line.admit("hot", signal, true);
  assert.deepEqual(await r.line.admit("quiet", signal, true), { kind: "slot" });
  assert.deepEqual(r.asked.map(([key]) => key), ["hot", "quiet"]);
  await r.settle(1000);
  assert.deepEqual(await hot, { kind: "slot" });
});

Deno.test("fleet line: a wait longer than the longest in memory is a deferral, rounded up to seconds", async () => {
  const r = rig([{ ok: false, at: 17_500 }]);
  const admission = await r.line.admit("k", new AbortController().signal, true);
  assert.deepEqual(admission, { kind: "deferred", seconds: 8 });
});

Deno.test("fleet line: a retry (mayDefer false) waits however long its slot is", async () => {
  const r = rig([{ ok: false, at: 17_500 }, { ok: true }]);
  const admission = r.line.admit("k", new AbortController().signal, false);
  await r.settle(7600);
  assert.deepEqual(await admission, { kind: "slot" });
});

Deno.test("fleet line: behind a refused head, beyond the key's share, a message is deferred at once", async () => {
  const r = rig([{ ok: false, at: 10_500 }], { keyHeld: 2, limit: 1 });
  const signal = new AbortController().signal;
  const first = r.line.admit("k", signal, true);
  const second = r.line.admit("k", signal, true);
  // A line still moving takes every arrival; behind a refused head, its share is the bound.
  await r.settle(20);
  assert.deepEqual(await r.line.admit("k", signal, true), { kind: "deferred", seconds: 2 });
  await r.settle(600);
  assert.deepEqual([await first, await second], [{ kind: "slot" }, { kind: "slot" }]);
  // The first asked twice (refused, then at its time), the second once, the deferred not at all.
  assert.equal(r.asked.length, 3);
});

Deno.test("fleet line: a failing table: the message waits and asks again after a backoff", async () => {
  const failure = new Error("DynamoDB UpdateItem failed: InternalServerError (HTTP 500)");
  const r = rig([failure, failure, { ok: true }]);
  const admission = r.line.admit("k", new AbortController().signal, true);
  await r.settle(1000);
  assert.deepEqual(await admission, { kind: "slot" });
  assert.equal(r.asked.length, 3);
  assert.ok(r.asked[1]![1] > r.asked[0]![1], "the second ask came after a backoff");
  assert.deepEqual(r.warnings, [
    "rate-limit table request failed; the message waits",
    "rate-limit table request failed; the message waits",
  ]);
});

Deno.test("fleet line: an abort while waiting rejects, and the next in line goes on", async () => {
  const r = rig([{ ok: false, at: 10_500 }, { ok: true }]);
  const stop = new AbortController();
  const first = r.line.admit("k", stop.signal, true);
  const second = r.line.admit("k", new AbortController().signal, true);
  await r.settle(20);
  stop.abort(new Error("grace over"));
  await assert.rejects(first, /grace over/);
  assert.deepEqual(await second, { kind: "slot" });
  assert.equal(r.line.held, 0);
});

Deno.test("fleet line: one that gives up its place in line does not let the next overtake the head", async () => {
  const r = rig([{ ok: false, at: 10_500 }, { ok: true }, { ok: true }]);
  const quit = new AbortController();
  const head = r.line.admit("k", new AbortController().signal, false);
  const middle = r.line.admit("k", quit.signal, false);
  const last = r.line.admit("k", new AbortController().signal, false);
  await r.settle(20);
  quit.abort(new Error("grace over"));
  await assert.rejects(middle, /grace over/);
  await r.settle(20);
  // The head is still waiting for its slot: the last one has not asked the table yet.
  assert.equal(r.asked.length, 1);
  await r.settle(600);
  assert.deepEqual([await head, await last], [{ kind: "slot" }, { kind: "slot" }]);
  assert.deepEqual(r.asked.map(([, at]) => at), [10_000, 10_500, 10_500]);
});
