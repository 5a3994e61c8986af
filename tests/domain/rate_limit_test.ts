import assert from "node:assert/strict";
import { nextSlot, parseRateKey, parseRateLimit } from "../../src/domain/rate_limit.ts";

const RATE = { limit: 3, windowMs: 1000 };
const at = (...times: number[]) => times.map((t) => ({ at: t }));

// [name, now, past submissions, promised slots, expected next slot]
const rows: Array<[string, number, number[], number[], number]> = [
  ["an empty window: now", 5000, [], [], 5000],
  ["fewer than N in the window: now", 5000, [4500, 4900], [], 5000],
  ["N in the window: one window after the oldest of them", 5000, [4100, 4500, 4900], [], 5100],
  ["a submission exactly one window old is out of it", 5000, [4000, 4500, 4900], [], 5000],
  ["a submission 1 ms inside the window still counts", 5000, [4001, 4500, 4900], [], 5001],
  ["older submissions kept beyond N do not count", 5000, [1000, 2000, 4100, 4500, 4900], [], 5100],
  [
    "a burst at a fixed bucket's edge is caught: 3 at 4999 ms block 5000 ms",
    5000,
    [4999, 4999, 4999],
    [],
    5999,
  ],
  ["promised slots count after the window: the first one back", 5000, [4500, 4900], [5500], 5500],
  ["all N places promised: one window after the first promise", 5000, [], [5100, 5200, 5300], 6100],
  ["past and promised together", 5000, [4600], [5200, 5300], 5600],
];

Deno.test("rate limit: next slot: a slot taken but not answered yet counts as leaving now", () => {
  assert.equal(nextSlot(RATE, 5000, [4500, 4900], [], 1), 5500);
  assert.equal(nextSlot(RATE, 5000, [4900], [], 1), 5000);
  assert.equal(nextSlot(RATE, 5000, [], [], 3), 6000);
});

for (const [name, now, past, promised, expected] of rows) {
  Deno.test(`rate limit: next slot: ${name}`, () => {
    assert.equal(nextSlot(RATE, now, past, at(...promised)), expected);
  });
}

Deno.test("rate limit: N in any window, never N per fixed bucket", () => {
  // Submit whenever nextSlot allows, for 10 s of a request every 10 ms; then check every window.
  const rate = { limit: 20, windowMs: 1000 };
  const past: number[] = [];
  for (let t = 0; t < 10_000; t += 10) {
    if (nextSlot(rate, t, past, []) <= t) past.push(t);
  }
  for (let start = -999; start < 10_000; start++) {
    const inside = past.filter((t) => t >= start && t < start + 1000).length;
    assert.ok(inside <= 20, `window at ${start} ms holds ${inside}`);
  }
  // A fixed-bucket limiter would have let 40 through around each second's edge: here 20 per s.
  assert.equal(past.length, 200);
});

Deno.test("rate limit: RATE_LIMIT forms", () => {
  assert.deepEqual(parseRateLimit("20/1s"), { limit: 20, windowMs: 1000 });
  assert.deepEqual(parseRateLimit("600/1m"), { limit: 600, windowMs: 60_000 });
  assert.deepEqual(parseRateLimit("1000/1h"), { limit: 1000, windowMs: 3_600_000 });
  assert.deepEqual(parseRateLimit("5/250ms"), { limit: 5, windowMs: 250 });
  assert.deepEqual(parseRateLimit("7/s"), { limit: 7, windowMs: 1000 });
  for (const bad of ["", "20", "20/", "0/1s", "20/0s", "20/1d", "20/13h", "1.5/1s", "x/1s"]) {
    assert.equal(parseRateLimit(bad), undefined, bad);
  }
});

Deno.test("rate limit: RATE_LIMIT_KEY forms", () => {
  assert.deepEqual(parseRateKey("user_id"), { kind: "user_id" });
  assert.deepEqual(parseRateKey("message_group"), { kind: "message_group" });
  assert.deepEqual(parseRateKey("attribute:tenant.id"), { kind: "attribute", name: "tenant.id" });
  for (const bad of ["", "user", "attribute:", "attribute:a b", "group"]) {
    assert.equal(parseRateKey(bad), undefined, bad);
  }
});
