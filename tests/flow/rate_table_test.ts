import assert from "node:assert/strict";
import { startDynalite } from "../../lab/dynalite.ts";
import { createRng } from "../../lab/prng.ts";
import { DynamoDbRateStore, FleetRate, type RateStore } from "../../src/flow/rate_table.ts";
import { CircuitBreaker } from "../../src/lib/circuit_breaker.ts";
import { FakeClock } from "../support/fake_clock.ts";

const RATE = { limit: 20, windowMs: 1000 };

function fleetOf(store: RateStore, clock: FakeClock) {
  return new FleetRate(RATE, store, {
    clock,
    breaker: new CircuitBreaker({ name: "rate_table", minimumCalls: 5, clock }),
  });
}

/** Counts a store's requests by kind. */
function counting(store: RateStore) {
  const calls = { take: 0, conflict: 0, read: 0 };
  const counted: RateStore = {
    take: async (...args) => {
      calls.take++;
      const answer = await store.take(...args);
      if (answer === "conflict") calls.conflict++;
      return answer;
    },
    read: (...args) => (calls.read++, store.read(...args)),
  };
  return { counted, calls };
}

Deno.test("rate table: three workers asking at once never put more than N in any window", async () => {
  const db = await startDynalite();
  const clock = new FakeClock({ start: 1_700_000_000_000, auto: false });
  const signal = new AbortController().signal;
  try {
    const { counted, calls } = counting(new DynamoDbRateStore(db.client, db.table));
    const workers = [fleetOf(counted, clock), fleetOf(counted, clock), fleetOf(counted, clock)];
    const taken: number[] = [];
    // For 5 s each worker asks now and then (a fifth of 10 ms ticks, seeded), about 60 asks a
    // second for 20 slots, so slices close while a worker's counts of them are stale.
    const rng = createRng(7);
    for (let t = 0; t < 5000; t += 10) {
      clock.set(1_700_000_000_000 + t);
      const asking = workers.filter(() => rng.chance(0.2));
      const answers = await Promise.all(asking.map((w) => w.take("hot", signal)));
      for (const answer of answers) {
        if (answer.ok) taken.push(t);
        else assert.ok(answer.at > clock.now(), "a refusal names a later time");
      }
    }
    for (let start = -999; start < 5000; start++) {
      const inside = taken.filter((t) => t >= start && t < start + 1000).length;
      assert.ok(inside <= 20, `window at ${start} ms holds ${inside}`);
    }
    // Conservative by at most a slice per window: 5 s of 20/s, less a slice of each.
    assert.ok(taken.length >= 85 && taken.length <= 100, `${taken.length} taken`);
    assert.ok(calls.conflict > 0, "some counts were stale");
    // A worker whose view is stale fails a write and reads once; a full window costs nothing.
    assert.ok(calls.take <= taken.length + calls.conflict, JSON.stringify(calls));
    assert.equal(calls.read, calls.conflict);
    // The item keeps only the live slices: the expired ones go with each write.
    const item = await db.client.getItem(db.table, { id: { S: "rate#hot" } });
    const slices = Object.keys(item ?? {}).filter((name) => /^s\d+$/.test(name));
    assert.ok(slices.length <= 11, `${slices.length} slices kept`);
  } finally {
    await db.close();
  }
});

Deno.test("rate table: keys are counted apart; a quiet key costs one write per slot", async () => {
  const db = await startDynalite();
  const clock = new FakeClock({ start: 1_700_000_000_000, auto: false });
  const signal = new AbortController().signal;
  try {
    const { counted, calls } = counting(new DynamoDbRateStore(db.client, db.table));
    const fleet = fleetOf(counted, clock);
    for (let i = 0; i < 20; i++) assert.deepEqual(await fleet.take("a", signal), { ok: true });
    assert.equal((await fleet.take("a", signal)).ok, false);
    assert.deepEqual(await fleet.take("b", signal), { ok: true });
    clock.advance(1200); // the window, and the slice counted for latency
    assert.deepEqual(await fleet.take("a", signal), { ok: true });
    assert.deepEqual(calls, { take: 22, conflict: 0, read: 0 });
  } finally {
    await db.close();
  }
});

Deno.test("rate table: room lost to others three times running: the next slice, not a busy loop", async () => {
  const clock = new FakeClock({ start: 1_700_000_000_050, auto: false });
  const { counted, calls } = counting({
    take: () => Promise.resolve("conflict"),
    read: () => Promise.resolve(new Map()),
  });
  const answer = await fleetOf(counted, clock).take("k", new AbortController().signal);
  assert.deepEqual(answer, { ok: false, at: 1_700_000_000_100 });
  assert.deepEqual(calls, { take: 3, conflict: 3, read: 3 });
});

Deno.test("rate table: a failing table throws to the caller; its breaker counts it", async () => {
  const clock = new FakeClock();
  const breaker = new CircuitBreaker({ name: "rate_table", minimumCalls: 2, clock });
  const fleet = new FleetRate(RATE, {
    take: () => Promise.reject(new Error("HTTP 500")),
    read: () => Promise.resolve(new Map()),
  }, { clock, breaker });
  const signal = new AbortController().signal;
  for (let i = 0; i < 2; i++) await assert.rejects(fleet.take("k", signal), /HTTP 500/);
  assert.equal(breaker.state, "open");
  await assert.rejects(fleet.take("k", signal), /circuit/i);
});
