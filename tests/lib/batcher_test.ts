import assert from "node:assert/strict";
import { Batcher } from "../../src/lib/batcher.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** Partial batches wait for this clock's timers: time moves only when a test says. */
const clock = new FakeClock({ auto: false });

/** Lets queued promise callbacks run. */
async function tick(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A run() that records each batch and doubles every number. */
function recorder() {
  const batches: number[][] = [];
  const run = (items: number[]) => {
    batches.push(items);
    return Promise.resolve(items.map((n) => n * 2));
  };
  return { batches, run };
}

Deno.test("batcher: flushes as soon as maxSize items are queued", async () => {
  const { batches, run } = recorder();
  // A long maxWaitMs: only the size can trigger these batches (a leftover timer would fail the sanitizer).
  const b = new Batcher<number, number>({ clock, maxSize: 3, maxWaitMs: 60_000, run });
  const results = await Promise.all([b.add(1), b.add(2), b.add(3)]);
  assert.deepEqual(results, [2, 4, 6]);
  assert.deepEqual(batches, [[1, 2, 3]]);
  assert.equal(b.pending, 0);
});

Deno.test("batcher: flushes a partial batch after maxWaitMs", async () => {
  const { batches, run } = recorder();
  const b = new Batcher<number, number>({ clock, maxSize: 10, maxWaitMs: 1, run });
  const first = [b.add(1), b.add(2)];
  await tick();
  assert.deepEqual(batches, [], "nothing runs before the wait is over");
  assert.equal(b.pending, 2);
  clock.advance(1);
  assert.deepEqual(await Promise.all(first), [2, 4]);
  assert.deepEqual(batches, [[1, 2]]);
  const next = b.add(5);
  clock.advance(1);
  assert.equal(await next, 10);
  assert.deepEqual(batches, [[1, 2], [5]]);
});

Deno.test("batcher: with maxWaitMs 0 batches items added in the same task", async () => {
  const { batches, run } = recorder();
  const b = new Batcher<number, number>({ clock, maxWaitMs: 0, run });
  const all = Promise.all([b.add(1), b.add(2), b.add(3)]);
  clock.advance(0);
  assert.deepEqual(await all, [2, 4, 6]);
  assert.deepEqual(batches, [[1, 2, 3]]);
});

Deno.test("batcher: splits more than maxSize items into ordered batches", async () => {
  const { batches, run } = recorder();
  const b = new Batcher<number, number>({ clock, maxSize: 2, maxWaitMs: 1, run });
  const all = Promise.all([1, 2, 3, 4, 5].map((n) => b.add(n)));
  await tick();
  clock.advance(1);
  const results = await all;
  assert.deepEqual(results, [2, 4, 6, 8, 10]);
  assert.deepEqual(batches, [[1, 2], [3, 4], [5]]);
});

Deno.test("batcher: rejects only the items whose result is an Error", async () => {
  const b = new Batcher<string, string>({
    clock,
    maxSize: 3,
    run: (items) =>
      Promise.resolve(
        items.map((s) => s.startsWith("bad") ? new Error(`no ${s}`) : s.toUpperCase()),
      ),
  });
  const [ok1, bad, ok2] = await Promise.allSettled([b.add("a"), b.add("bad1"), b.add("c")]);
  assert.deepEqual(ok1, { status: "fulfilled", value: "A" });
  assert.equal(bad?.status, "rejected");
  assert.match(((bad as PromiseRejectedResult).reason as Error).message, /no bad1/);
  assert.deepEqual(ok2, { status: "fulfilled", value: "C" });
});

Deno.test("batcher: rejects every item of a batch whose run() throws", async () => {
  const boom = new Error("boom");
  let calls = 0;
  const b = new Batcher<number, number>({
    clock,
    maxSize: 2,
    run: () => {
      calls++;
      if (calls === 1) throw boom; // synchronous throw
      return Promise.reject(boom);
    },
  });
  for (let round = 0; round < 2; round++) {
    const settled = await Promise.allSettled([b.add(1), b.add(2)]);
    assert.deepEqual(settled, [
      { status: "rejected", reason: boom },
      { status: "rejected", reason: boom },
    ]);
  }
  assert.equal(calls, 2);
});

Deno.test("batcher: rejects the batch when run() returns the wrong number of results", async () => {
  const b = new Batcher<number, number>({ clock, maxSize: 2, run: () => Promise.resolve([1]) });
  const settled = await Promise.allSettled([b.add(1), b.add(2)]);
  for (const s of settled) {
    assert.equal(s.status, "rejected");
    assert.match(
      ((s as PromiseRejectedResult).reason as Error).message,
      /received 1 results, expected 2, one per item/,
    );
  }
});

Deno.test("batcher: flush runs queued items now and waits for earlier batches", async () => {
  const gate = Promise.withResolvers<void>();
  const batches: number[][] = [];
  const b = new Batcher<number, number>({
    clock,
    maxSize: 2,
    maxWaitMs: 60_000,
    run: async (items) => {
      batches.push(items);
      if (batches.length === 1) await gate.promise;
      return items;
    },
  });
  const early = [b.add(1), b.add(2)]; // size flush; held by the gate
  const late = b.add(3); // would wait a minute without flush()
  let flushed = false;
  const flushing = b.flush().then(() => (flushed = true));
  await tick();
  assert.deepEqual(batches, [[1, 2], [3]]);
  assert.equal(b.pending, 0);
  assert.equal(await late, 3);
  assert.equal(flushed, false, "flush waits for the earlier batch in flight");
  gate.resolve();
  await flushing;
  assert.deepEqual(await Promise.all(early), [1, 2]);
  await b.flush(); // nothing queued, nothing in flight
});

Deno.test("batcher: flush resolves even when items are rejected", async () => {
  const b = new Batcher<number, number>({
    clock,
    maxWaitMs: 60_000,
    run: () => Promise.reject(new Error("down")),
  });
  const p = b.add(1);
  await b.flush();
  await assert.rejects(p, /down/);
});

Deno.test("batcher: respects maxConcurrentBatches", async () => {
  const gates: Array<ReturnType<typeof Promise.withResolvers<void>>> = [];
  const batches: number[][] = [];
  let running = 0;
  let peak = 0;
  const b = new Batcher<number, number>({
    clock,
    maxSize: 2,
    maxWaitMs: 60_000,
    maxConcurrentBatches: 2,
    run: async (items) => {
      batches.push(items);
      running++;
      peak = Math.max(peak, running);
      const gate = Promise.withResolvers<void>();
      gates.push(gate);
      await gate.promise;
      running--;
      return items;
    },
  });
  const all = [1, 2, 3, 4, 5, 6, 7].map((n) => b.add(n));
  await tick();
  assert.deepEqual(batches, [[1, 2], [3, 4]]);
  assert.equal(b.pending, 3);
  const flushing = b.flush();
  await tick();
  assert.equal(batches.length, 2, "flush does not exceed the cap");
  gates[0]!.resolve();
  await tick();
  assert.deepEqual(batches[2], [5, 6]);
  gates[1]!.resolve();
  await tick();
  assert.deepEqual(batches[3], [7], "the flushed remainder runs when a slot frees");
  gates[2]!.resolve();
  gates[3]!.resolve();
  await flushing;
  assert.deepEqual(await Promise.all(all), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(peak, 2);
});

Deno.test("batcher: rejects invalid options", () => {
  const run = () => Promise.resolve([]);
  assert.throws(() => new Batcher({ clock, maxSize: 0, run }), RangeError);
  assert.throws(() => new Batcher({ clock, maxConcurrentBatches: 0, run }), RangeError);
});
