import assert from "node:assert/strict";
import { nextSliceSlot, slicePlan, sliceShape, sliceStart } from "../../src/domain/rate_slices.ts";

// 3 per second in 100 ms slices: slice i is [100 i, 100 i + 100).
const RATE = { limit: 3, windowMs: 1000 };
const counts = (entries: Record<number, number>) =>
  new Map(Object.entries(entries).map(([k, v]) => [Number(k), v]));

// [name, now, counts, room, free, expired]
const planRows: Array<[string, number, Record<number, number>, number, boolean, number[]]> = [
  ["nothing known: all the room", 5050, {}, 3, true, []],
  ["the current slice below the room: free", 5050, { 50: 2 }, 3, true, []],
  ["the current slice at the room: not free", 5050, { 50: 3 }, 3, false, []],
  ["earlier live slices take from the room", 5050, { 41: 1, 49: 1, 50: 1 }, 1, false, []],
  ["the oldest window slice counts whole", 5050, { 40: 2 }, 1, true, []],
  ["one slice more counts, for a submission's latency", 5050, { 39: 2 }, 1, true, []],
  ["a slice before the live ones is out, and to be removed", 5050, { 38: 3, 45: 1 }, 2, true, [38]],
];

for (const [name, now, known, room, free, expired] of planRows) {
  Deno.test(`rate slices: plan: ${name}`, () => {
    const plan = slicePlan(RATE, now, counts(known));
    assert.equal(plan.slice, 50);
    assert.equal(plan.room, room);
    assert.equal(plan.free, free);
    assert.deepEqual(plan.expired, expired);
    assert.deepEqual(plan.live.map(([slice]) => slice), [
      39,
      40,
      41,
      42,
      43,
      44,
      45,
      46,
      47,
      48,
      49,
    ]);
  });
}

// [name, now, counts, next slot]
const slotRows: Array<[string, number, Record<number, number>, number]> = [
  ["free now: now", 5050, { 50: 1 }, 5050],
  [
    "the current slice full: the next slice's start once the oldest leaves",
    5050,
    { 39: 1, 50: 2 },
    5100,
  ],
  ["full by the current slice alone: a window and two slices on", 5050, { 50: 3 }, 6200],
  ["full by earlier slices: when enough of them leave", 5050, { 42: 2, 45: 1 }, 5400],
];

for (const [name, now, known, expected] of slotRows) {
  Deno.test(`rate slices: next slot: ${name}`, () => {
    assert.equal(nextSliceSlot(RATE, now, counts(known)), expected);
  });
}

Deno.test("rate slices: windows shorter than ten ms have 1 ms slices; starts are whole ms", () => {
  assert.deepEqual(sliceShape({ limit: 1, windowMs: 4 }), { slices: 4, sliceMs: 1 });
  assert.deepEqual(sliceShape({ limit: 1, windowMs: 250 }), { slices: 10, sliceMs: 25 });
  const odd = { limit: 1, windowMs: 333 };
  for (let index = 1; index < 10_000; index++) {
    const start = sliceStart(odd, index);
    assert.equal(
      slicePlan(odd, start, new Map()).slice,
      index,
      `slice ${index} starts at ${start}`,
    );
    assert.equal(slicePlan(odd, start - 1, new Map()).slice, index - 1);
  }
});

Deno.test("rate slices: taking whenever the plan is free keeps every window of DURATION within N", () => {
  // One taker, a request every 7 ms for 10 s: the counts as the table would hold them.
  const rate = { limit: 20, windowMs: 1000 };
  const known = new Map<number, number>();
  const taken: number[] = [];
  for (let t = 0; t < 10_000; t += 7) {
    const plan = slicePlan(rate, t, known);
    if (!plan.free) {
      assert.ok(nextSliceSlot(rate, t, known) > t);
      continue;
    }
    known.set(plan.slice, (known.get(plan.slice) ?? 0) + 1);
    taken.push(t);
  }
  for (let start = -999; start < 10_000; start++) {
    const inside = taken.filter((t) => t >= start && t < start + 1000).length;
    assert.ok(inside <= 20, `window at ${start} ms holds ${inside}`);
  }
  // The price of counting the oldest slice whole and one more: at most two slices a window.
  assert.ok(taken.length >= 160 && taken.length <= 200, `${taken.length} taken`);
});
