import assert from "node:assert/strict";
import { Semaphore } from "../../src/lib/semaphore.ts";

/** Lets queued promise callbacks run. */
async function tick(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

Deno.test("semaphore: rejects a limit below 1 or fractional", () => {
  assert.throws(() => new Semaphore({ limit: 0 }), RangeError);
  assert.throws(() => new Semaphore({ limit: 1.5 }), RangeError);
  const s = new Semaphore({ limit: 1 });
  assert.throws(() => s.setLimit(0), RangeError);
  assert.equal(s.limit, 1);
});

Deno.test("semaphore: admits up to limit, then queues", async () => {
  const s = new Semaphore({ limit: 2 });
  const r1 = await s.acquire();
  const r2 = await s.acquire();
  assert.equal(s.active, 2);
  let third = false;
  const p3 = s.acquire().then((r) => {
    third = true;
    return r;
  });
  await tick();
  assert.equal(third, false);
  assert.equal(s.pending, 1);
  r1();
  const r3 = await p3;
  assert.equal(third, true);
  assert.equal(s.active, 2);
  assert.equal(s.pending, 0);
  r2();
  r3();
  assert.equal(s.active, 0);
});

Deno.test("semaphore: serves waiters in FIFO order", async () => {
  const s = new Semaphore({ limit: 1 });
  const first = await s.acquire();
  const order: number[] = [];
  const waits = [1, 2, 3].map((n) =>
    s.acquire().then((release) => {
      order.push(n);
      release();
    })
  );
  first();
  await Promise.all(waits);
  assert.deepEqual(order, [1, 2, 3]);
});

Deno.test("semaphore: release is idempotent", async () => {
  const s = new Semaphore({ limit: 1 });
  const r1 = await s.acquire();
  r1();
  r1();
  assert.equal(s.active, 0);
  const r2 = await s.acquire();
  r1(); // a stale release must not free r2's slot
  assert.equal(s.active, 1);
  r2();
});

Deno.test("semaphore: acquire rejects with signal.reason and leaves the queue", async () => {
  const s = new Semaphore({ limit: 1 });
  const held = await s.acquire();
  const controller = new AbortController();
  const waiting = s.acquire(controller.signal);
  const after = s.acquire();
  assert.equal(s.pending, 2);
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(waiting, (err) => err === reason);
  assert.equal(s.pending, 1);
  held();
  const r = await after;
  assert.equal(s.active, 1);
  r();
  assert.equal(s.active, 0);
});

Deno.test("semaphore: acquire with an already aborted signal rejects without taking a slot", async () => {
  const s = new Semaphore({ limit: 1 });
  const reason = new Error("already");
  await assert.rejects(s.acquire(AbortSignal.abort(reason)), (err) => err === reason);
  assert.equal(s.active, 0);
  assert.equal(s.pending, 0);
});

Deno.test("semaphore: run releases after success and after failure", async () => {
  const s = new Semaphore({ limit: 1 });
  assert.equal(await s.run(() => Promise.resolve(7)), 7);
  assert.equal(s.active, 0);
  await assert.rejects(s.run(() => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(s.active, 0);
});

Deno.test("semaphore: run never exceeds the limit", async () => {
  const s = new Semaphore({ limit: 3 });
  let running = 0;
  let peak = 0;
  await Promise.all(
    Array.from({ length: 20 }, () =>
      s.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
      })),
  );
  assert.equal(peak, 3);
});

Deno.test("semaphore: setLimit raising wakes waiters; lowering holds new ones back", async () => {
  const s = new Semaphore({ limit: 1 });
  const r1 = await s.acquire();
  const got: Array<() => void> = [];
  const waits = [s.acquire(), s.acquire()].map((p) => p.then((r) => got.push(r)));
  await tick();
  assert.equal(got.length, 0);
  s.setLimit(3);
  await Promise.all(waits);
  assert.equal(s.active, 3);

  s.setLimit(1);
  let fourth = false;
  const p4 = s.acquire().then((r) => {
    fourth = true;
    return r;
  });
  r1();
  got[0]!();
  await tick();
  assert.equal(fourth, false, "active (1) is not below the new limit (1)");
  got[1]!();
  const r4 = await p4;
  assert.equal(s.active, 1);
  r4();
});

Deno.test("semaphore: a slot granted in the turn the signal aborts does not start the queued call", async () => {
  const sem = new Semaphore({ limit: 1 });
  const holder = await sem.acquire();
  const stop = new AbortController();
  let started = false;
  const queued = sem.run(() => {
    started = true;
    return Promise.resolve();
  }, stop.signal);
  holder(); // grants the slot to the queued call...
  stop.abort(new Error("grace over")); // ...and the grace ends before it runs
  await assert.rejects(queued, /grace over/);
  assert.equal(started, false);
  assert.equal(sem.active, 0, "the slot was given back");
});

Deno.test("semaphore: tryAcquire takes a free slot at once, and none while the limit is reached or others queue", async () => {
  const sem = new Semaphore({ limit: 2 });
  const first = sem.tryAcquire();
  assert.ok(first);
  const second = sem.tryAcquire();
  assert.ok(second);
  assert.equal(sem.tryAcquire(), undefined, "the limit is reached");
  const queued = sem.acquire();
  first();
  // The freed slot goes to the caller that queued, not to a tryAcquire that jumps the queue.
  assert.equal(sem.tryAcquire(), undefined);
  const third = await queued;
  assert.equal(sem.active, 2);
  second();
  third();
  assert.equal(sem.active, 0);
  assert.ok(sem.tryAcquire());
});
