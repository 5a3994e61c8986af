/** The DynamoDB store and the gate against dynalite: races, expiry, takeover, fencing, reuse. */
import assert from "node:assert/strict";
import { type DynaliteServer, startDynalite } from "../../lab/dynalite.ts";
import {
  DynamoDbStore,
  type IdempotencyStore,
  keySchemaProblems,
  probeKeyedTable,
} from "../../src/flow/idempotency_store.ts";
import { type GateOptions, StoreGate } from "../../src/flow/idempotency_gate.ts";
import type { IdempotencyRecord } from "../../src/domain/idempotency.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { TableError, TimeoutError } from "../../src/lib/errors.ts";
import type { InputMessage } from "../../src/domain/message_schema.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** A fresh dynalite table and a store on it; dynalite is closed after `fn`. */
async function withStore(
  fn: (store: DynamoDbStore, db: DynaliteServer) => Promise<void>,
): Promise<void> {
  const db = await startDynalite();
  try {
    await fn(new DynamoDbStore(db.client, db.table), db);
  } finally {
    await db.close();
  }
}

const logger = createLogger({
  level: "error",
  format: "json",
  write: () => {},
  clock: new FakeClock({ start: 0 }),
});
const T0 = 1_800_000_000_000;

function record(over: Partial<IdempotencyRecord> = {}): IdempotencyRecord {
  return {
    id: "m-1",
    status: "IN_PROGRESS",
    owner: "a",
    inProgressUntil: T0 + 35_000,
    expiresAt: T0 / 1000 + 3600,
    payloadHash: "h1",
    ...over,
  };
}

const message = (payload: Record<string, unknown> = { n: 1 }): InputMessage => ({
  message_id: "m-1",
  user_id: "u1",
  event_ts: 1,
  payload,
});

/**
 * A gate's options with a breaker that lets every call through, on `clock` (default a fake one
 * at the wall clock's time); `sleep`, when given, replaces its sleeps (a hook that acts while
 * the gate waits).
 */
function gateOptions(
  options: Omit<GateOptions, "breaker" | "submitMarginMs" | "clock"> & {
    clock?: FakeClock;
    sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  },
): GateOptions {
  const { clock = new FakeClock({ start: Date.now() }), sleep, ...rest } = options;
  return {
    breaker: { run: (fn) => fn() },
    submitMarginMs: 5000,
    clock: sleep ? { ...clock, sleep } : clock,
    ...rest,
  };
}

Deno.test("idempotency store: store: two concurrent claims, exactly one wins; the loser reads the winner's record", async () => {
  await withStore(async (store) => {
    const answers = await Promise.all(
      ["a", "b", "c", "d"].map((owner) => store.claim(record({ owner }), T0)),
    );
    assert.equal(answers.filter((a) => a.claimed).length, 1);
    const read = await store.read("m-1");
    const winner = ["a", "b", "c", "d"][answers.findIndex((a) => a.claimed)];
    assert.equal(read?.owner, winner);
    assert.equal(read?.status, "IN_PROGRESS");
    assert.equal(await store.read("other"), undefined);
  });
});

Deno.test("idempotency store: store: a lapsed lock is taken over (and said so); a live one is not; expiry frees COMPLETED", async () => {
  await withStore(async (store) => {
    assert.deepEqual(await store.claim(record({ owner: "a" }), T0), {
      claimed: true,
      takeover: false,
    });
    // Still live a second before its end.
    assert.deepEqual(await store.claim(record({ owner: "b" }), T0 + 34_000), { claimed: false });
    // Lapsed: b takes it over.
    assert.deepEqual(await store.claim(record({ owner: "b" }), T0 + 35_001), {
      claimed: true,
      takeover: true,
    });
    assert.equal((await store.read("m-1"))?.owner, "b");
    assert.equal(await store.complete("m-1", "b", T0 / 1000 + 100), true);
    // COMPLETED and not expired: nobody claims it, even long after its lock time.
    assert.deepEqual(await store.claim(record({ owner: "c" }), T0 + 99_000), { claimed: false });
    // Expired (compared in the condition, not by TTL): claimable again.
    assert.deepEqual(await store.claim(record({ owner: "c" }), T0 + 101_000), {
      claimed: true,
      takeover: false,
    });
  });
});

Deno.test("idempotency store: store: a stale owner is fenced off extend, complete and release", async () => {
  await withStore(async (store) => {
    await store.claim(record({ owner: "a" }), T0);
    assert.equal(await store.extend("m-1", "a", T0 + 60_000, T0 / 1000 + 3700), true);
    assert.equal((await store.read("m-1"))?.inProgressUntil, T0 + 60_000);
    // a's lock lapses, b takes over: every write of a is refused from then on.
    await store.claim(record({ owner: "b", inProgressUntil: T0 + 200_000 }), T0 + 60_001);
    assert.equal(await store.extend("m-1", "a", T0 + 90_000, T0 / 1000 + 3700), false);
    assert.equal(await store.complete("m-1", "a", T0 / 1000 + 3600), false);
    assert.equal(await store.release("m-1", "a"), false);
    const now = await store.read("m-1");
    assert.equal(now?.owner, "b");
    assert.equal(now?.status, "IN_PROGRESS");
    // The owner's release deletes the record.
    assert.equal(await store.release("m-1", "b"), true);
    assert.equal(await store.read("m-1"), undefined);
  });
});

Deno.test("idempotency store: gate: the loser waits for a live lock, then sees the duplicate; never proceeds", async () => {
  await withStore(async (_store, db) => {
    const clock = new FakeClock({ start: Date.now() });
    const gate = (id: string, onSleep?: () => Promise<void>) =>
      new StoreGate(gateOptions({
        store: new DynamoDbStore(db.client, db.table),
        workerId: id,
        visibilityTimeoutSeconds: 30,
        dedupTtlSeconds: 3600,
        logger,
        clock,
        sleep: async (ms: number) => {
          await clock.sleep(ms);
          await onSleep?.();
        },
      }));
    const a = gate("w-a");
    const claimA = await a.claim(message(), "r-a", new AbortController().signal);
    assert.equal(claimA.kind, "proceed");
    let waited = 0;
    const b = gate("w-b", async () => {
      // While b waits, a is accepted and completes.
      if (++waited === 2 && claimA.kind === "proceed") await a.complete(claimA.lock);
    });
    const claimB = await b.claim(message(), "r-b", new AbortController().signal);
    assert.equal(claimB.kind, "duplicate");
    assert.equal(waited, 2);
  });
});

Deno.test("idempotency store: gate: a released claim lets the waiting copy proceed; a reused message_id is a mismatch", async () => {
  await withStore(async (store) => {
    const conflicts: string[] = [];
    let aLock: import("../../src/flow/idempotency_gate.ts").IdempotencyLock | undefined;
    const a = new StoreGate(gateOptions({
      store,
      workerId: "w-a",
      visibilityTimeoutSeconds: 30,
      dedupTtlSeconds: 3600,
      logger,
    }));
    const b = new StoreGate(gateOptions({
      store,
      workerId: "w-b",
      visibilityTimeoutSeconds: 30,
      dedupTtlSeconds: 3600,
      logger,
      onConflict: (d) => conflicts.push(d),
      sleep: async () => {
        if (aLock) await a.release(aLock);
        aLock = undefined;
      },
    }));
    const first = await a.claim(message(), "r-a", new AbortController().signal);
    assert.equal(first.kind, "proceed");
    if (first.kind === "proceed") aLock = first.lock;
    const other = await b.claim(message({ n: 2 }), "r-x", new AbortController().signal);
    assert.equal(other.kind, "mismatch");
    const second = await b.claim(message(), "r-b", new AbortController().signal);
    assert.equal(second.kind, "proceed");
    assert.deepEqual(conflicts, ["mismatch", "wait", "claim_again"]);
  });
});

Deno.test("idempotency store: gate: a fenced extension marks the lock lost, so the pipeline does not submit", async () => {
  await withStore(async (store) => {
    const clock = new FakeClock({ start: Date.now() });
    const fenced: string[] = [];
    const mk = (id: string) =>
      new StoreGate(gateOptions({
        store,
        workerId: id,
        visibilityTimeoutSeconds: 30,
        dedupTtlSeconds: 3600,
        logger,
        clock,
        onFenced: (action) => fenced.push(action),
      }));
    const a = mk("w-a");
    const b = mk("w-b");
    const claimA = await a.claim(message(), "r-a", new AbortController().signal);
    assert.ok(claimA.kind === "proceed");
    clock.advance(36_000); // a's lock lapsed (its heartbeat stalled)
    const claimB = await b.claim(message(), "r-b", new AbortController().signal);
    assert.equal(claimB.kind, "proceed");
    a.extend("r-a", 30);
    for (let i = 0; i < 50 && claimA.lock.held; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(claimA.lock.held, false);
    assert.deepEqual(fenced, ["extend"]);
    await a.complete(claimA.lock); // refused: b owns it
    assert.deepEqual(fenced, ["extend", "complete"]);
    assert.equal((await store.read("m-1"))?.status, "IN_PROGRESS");
  });
});

Deno.test("idempotency store: probe: a missing table and a wrong key schema are named", async () => {
  await withStore(async (_store, db) => {
    assert.deepEqual(await probeKeyedTable(db.client, db.table), []);
    const missing = await probeKeyedTable(db.client, "no-such-table");
    assert.match(missing[0] ?? "", /does not exist/);
  });
  const rows: Array<[Record<string, unknown>, number]> = [
    [{
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      TableStatus: "ACTIVE",
    }, 0],
    [{
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "N" }],
      TableStatus: "ACTIVE",
    }, 1],
    [{
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
    }, 1],
    [{
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }, {
        AttributeName: "sk",
        KeyType: "RANGE",
      }],
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
    }, 1],
    [{
      KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
      TableStatus: "DELETING",
    }, 1],
  ];
  for (const [described, count] of rows) {
    assert.equal(keySchemaProblems("t", described).length, count, JSON.stringify(described));
  }
});

Deno.test("idempotency store: retries after a timed-out success: complete again is not fenced; a written claim is ours", async () => {
  await withStore(async (store) => {
    await store.claim(record({ owner: "a" }), T0);
    assert.equal(await store.complete("m-1", "a", T0 / 1000 + 3600), true);
    assert.equal(await store.complete("m-1", "a", T0 / 1000 + 3600), true, "same owner again");
    assert.equal(await store.complete("m-1", "b", T0 / 1000 + 3600), false, "another owner");

    // The first PutItem lands but its answer times out; the retry must not wait for itself.
    let first = true;
    const flaky: IdempotencyStore = {
      claim: async (r, now, signal) => {
        const answer = await store.claim(r, now, signal);
        if (first) {
          first = false;
          throw new TimeoutError("DynamoDB PutItem", 5000);
        }
        return answer;
      },
      read: (id, signal) => store.read(id, signal),
      extend: (...args) => store.extend(...args),
      complete: (...args) => store.complete(...args),
      release: (...args) => store.release(...args),
    };
    const conflicts: string[] = [];
    const gate = new StoreGate(gateOptions({
      store: flaky,
      workerId: "w-a",
      visibilityTimeoutSeconds: 30,
      dedupTtlSeconds: 3600,
      logger,
      onConflict: (d) => conflicts.push(d),
      sleep: () => Promise.resolve(),
    }));
    const m2 = { ...message(), message_id: "m-2" };
    // The timeout is the table's failure, thrown for the caller to retry (under the heartbeat).
    await assert.rejects(gate.claim(m2, "r-a", new AbortController().signal), TableError);
    const claim = await gate.claim(m2, "r-a", new AbortController().signal);
    assert.equal(claim.kind, "proceed");
    assert.deepEqual(conflicts, ["ours"]);
    if (claim.kind === "proceed") assert.ok(gate.maySubmit(claim.lock), "extended: it lasts");
  });
});

Deno.test("idempotency store: gate: a lock whose extensions fail is not submitted under once it may lapse first; lost() ends it at once", async () => {
  await withStore(async (store) => {
    const clock = new FakeClock({ start: 1_000_000 });
    let failing = false;
    const failingStore: IdempotencyStore = {
      claim: (...args) => store.claim(...args),
      read: (...args) => store.read(...args),
      extend: (...args) =>
        failing
          ? Promise.reject(new TimeoutError("DynamoDB UpdateItem", 5000))
          : store.extend(...args),
      complete: (...args) => store.complete(...args),
      release: (...args) => store.release(...args),
    };
    const gate = new StoreGate(gateOptions({
      store: failingStore,
      workerId: "w",
      visibilityTimeoutSeconds: 30,
      dedupTtlSeconds: 3600,
      logger,
      clock,
    }));
    const claim = await gate.claim(message(), "r", new AbortController().signal);
    assert.equal(claim.kind, "proceed");
    if (claim.kind !== "proceed") return;
    assert.ok(gate.maySubmit(claim.lock));
    failing = true;
    gate.extend("r", 30);
    await new Promise((resolve) => setTimeout(resolve, 10));
    // 30 s + 5 s margin from the claim; a submission needs 5 s of it.
    clock.advance(29_000);
    assert.ok(gate.maySubmit(claim.lock), "6 s left");
    clock.advance(2_000);
    assert.ok(!gate.maySubmit(claim.lock), "4 s left: it may lapse under the submission");
    gate.lost("r");
    failing = false;
    gate.extend("r", 30);
    assert.ok(!gate.maySubmit(claim.lock), "a stale receipt's lock is not ours");
  });
});

Deno.test("idempotency store: gate: a COMPLETED write is retried while the lock holds later copies off, then counted; a stop ends it", async () => {
  await withStore(async (store) => {
    for (
      const row of [{ failures: 12, stop: false }, { failures: Infinity, stop: false }, {
        failures: Infinity,
        stop: true,
      }]
    ) {
      const clock = new FakeClock({ start: T0 });
      const causes: string[] = [];
      let calls = 0;
      const stop = new AbortController();
      const gate = new StoreGate({
        ...gateOptions({
          store: {
            claim: (...args) => store.claim(...args),
            read: (...args) => store.read(...args),
            extend: (...args) => store.extend(...args),
            complete: (...args) => {
              if (row.stop && calls === 2) stop.abort();
              return ++calls > row.failures
                ? store.complete(...args)
                : Promise.reject(new TimeoutError("DynamoDB UpdateItem", 5000));
            },
            release: (...args) => store.release(...args),
          },
          workerId: "w",
          visibilityTimeoutSeconds: 30,
          dedupTtlSeconds: 3600,
          logger,
          onAtLeastOnce: (cause) => causes.push(cause),
        }),
        clock,
      });
      const m = { ...message(), message_id: `m-${row.failures}-${row.stop}` };
      const claim = await gate.claim(m, "r", new AbortController().signal);
      if (claim.kind !== "proceed") throw new Error("claimed");
      await gate.complete(claim.lock, stop.signal);
      const record = await store.read(m.message_id);
      if (row.failures === 12) {
        // 12 failures over ~20 s of backoff, inside the 35 s lock: then the write lands.
        assert.equal(record?.status, "COMPLETED");
        assert.deepEqual(causes, []);
        assert.ok(clock.now() - T0 < 35_000);
      } else if (!row.stop) {
        assert.equal(record?.status, "IN_PROGRESS");
        assert.deepEqual(causes, ["complete_failed"]);
        const spent = clock.now() - T0;
        assert.ok(spent >= 35_000 && spent < 40_000, `retried until the lock's end: ${spent} ms`);
      } else {
        assert.deepEqual(causes, ["complete_failed"]);
        assert.equal(calls, 3, "no attempt after the stop");
      }
    }
  });
});
