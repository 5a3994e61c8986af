import assert from "node:assert/strict";
import { nearestRank, summaryFields, SummaryLog } from "../../src/app/summary_log.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { FakeClock } from "../support/fake_clock.ts";

const SNAPSHOT = {
  inFlight: 3,
  breakers: { enrichment: "closed", validator: "open", sqs: "closed" },
  queueVisible: 120,
  queueInFlight: 40,
};

Deno.test("summary log: nearestRank: row by row", () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  const rows: Array<[readonly number[], number, number]> = [
    [[], 0.5, 0],
    [[7], 0.5, 7],
    [[7], 0.99, 7],
    [[1, 2], 0.5, 1],
    [hundred, 0.5, 50],
    [hundred, 0.99, 99],
    [hundred, 1, 100],
    [hundred, 0, 1],
  ];
  for (const [sorted, q, want] of rows) {
    assert.equal(nearestRank(sorted, q), want, `${q} of ${sorted.length}`);
  }
});

Deno.test("summary log: summaryFields: counts, rate, percentiles and the snapshot", () => {
  const counts = new Map([["accepted", 290], ["dead_lettered", 10]]);
  const durations = Array.from({ length: 300 }, (_, i) => 300 - i); // 300..1 ms, unsorted
  assert.deepEqual(summaryFields(counts, durations, 30_000, SNAPSHOT), {
    interval_s: 30,
    outcomes: { accepted: 290, dead_lettered: 10 },
    total: 300,
    msg_per_s: 10,
    p50_ms: 150,
    p99_ms: 297,
    in_flight: 3,
    breakers: SNAPSHOT.breakers,
    queue_visible: 120,
    queue_in_flight: 40,
  });
  const idle = summaryFields(new Map(), [], 0, SNAPSHOT);
  assert.equal(idle.total, 0);
  assert.equal(idle.msg_per_s, 0);
  assert.equal(idle.p99_ms, 0);
});

Deno.test("summary log: SummaryLog: one line per interval on a fake clock, counts since the last one", () => {
  const clock = new FakeClock({ start: 1_000_000, auto: false });
  const lines: Array<Record<string, unknown>> = [];
  const summary = new SummaryLog({
    logger: createLogger({ clock, write: (l) => lines.push(JSON.parse(l)) }),
    clock,
    intervalMs: 30_000,
  });
  summary.observe(() => SNAPSHOT);
  summary.start();
  summary.start(); // idempotent
  assert.equal(clock.pending, 1, "one timer");

  for (let i = 0; i < 60; i++) summary.record("accepted", 20);
  summary.record("released", 900);
  clock.advance(30_000);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.msg, "summary");
  assert.deepEqual(lines[0]!.outcomes, { accepted: 60, released: 1 });
  assert.equal(lines[0]!.msg_per_s, 2);
  assert.equal(lines[0]!.p50_ms, 20);
  assert.equal(lines[0]!.p99_ms, 900);

  clock.advance(30_000);
  assert.deepEqual(lines[1]!.outcomes, {}, "nothing since the last summary");
  assert.equal(lines[1]!.total, 0);

  summary.record("duplicate", 5);
  clock.advance(10_000);
  summary.stop();
  assert.equal(clock.pending, 0, "the timer is cancelled");
  assert.equal(lines.length, 3, "stop writes a last summary");
  assert.deepEqual(lines[2]!.outcomes, { duplicate: 1 });
  assert.equal(lines[2]!.interval_s, 10);
  summary.stop();
  assert.equal(lines.length, 3, "a second stop writes nothing");
});

Deno.test("summary log: SummaryLog keeps at most maxSamples durations but exact counts", () => {
  const lines: Array<Record<string, unknown>> = [];
  const summary = new SummaryLog({
    logger: createLogger({
      write: (l) => lines.push(JSON.parse(l)),
      clock: new FakeClock({ start: 0 }),
    }),
    clock: new FakeClock(),
    maxSamples: 10,
  });
  summary.observe(() => SNAPSHOT);
  for (let i = 0; i < 10; i++) summary.record("accepted", 1);
  for (let i = 0; i < 90; i++) summary.record("accepted", 1000);
  summary.flush();
  assert.equal(lines[0]!.total, 100);
  assert.equal(lines[0]!.p99_ms, 1);
});
