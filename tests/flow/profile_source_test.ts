import assert from "node:assert/strict";
import { systemClock } from "../../src/lib/clock.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { EnrichClient } from "../../src/adapters/enrich_client.ts";
import { CircuitBreaker } from "../../src/lib/circuit_breaker.ts";
import { categoryOf, CircuitOpenError, HttpError } from "../../src/lib/errors.ts";
import { ProfileSource } from "../../src/flow/profile_source.ts";
import { Semaphore } from "../../src/lib/semaphore.ts";

function source(fetched: string[]) {
  const fakeFetch = (input: RequestInfo | URL) => {
    fetched.push(String(input));
    return Promise.resolve(Response.json({ user_id: "x", segment: "s" }));
  };
  const clock = new FakeClock();
  const breaker = new CircuitBreaker({ name: "enrichment", minimumCalls: 4, clock });
  const profiles = new ProfileSource({
    client: new EnrichClient({
      clock: systemClock,
      baseUrl: "http://127.0.0.1:9",
      timeoutMs: 1000,
      fetch: fakeFetch as typeof fetch,
    }),
    breaker,
    limiter: { run: (fn) => fn() },
    cacheTtlMs: 60_000,
    cacheMaxEntries: 100,
    batchMax: 1,
    batchWaitMs: 0,
    clock,
  });
  return { breaker, profiles };
}

Deno.test("profile source: hostile ids: a user_id encodeURIComponent refuses is a PERMANENT local error that never trips the enrichment breaker", async () => {
  const fetched: string[] = [];
  const { breaker, profiles } = source(fetched);
  for (let i = 0; i < 8; i++) {
    const error = await profiles.lookup(`u${i}\ud800`).then(() => undefined, (e) => e);
    assert.ok(error instanceof Error, "no profile for an id no request can name");
    assert.equal(categoryOf(error), "PERMANENT");
  }
  assert.equal(breaker.state, "closed");
  assert.deepEqual(fetched, [], "no request went out");
  // The breaker still guards real lookups.
  assert.equal((await profiles.lookup("ok")).status, "ok");
  assert.equal(fetched.length, 1);
});

Deno.test("profile source: an open enrichment breaker still serves a cached profile, as stale", async () => {
  const clock = new FakeClock({ start: 0 });
  const breaker = new CircuitBreaker({ name: "enrichment", minimumCalls: 2, clock });
  let calls = 0;
  let down = false;
  const source = new ProfileSource({
    client: {
      getUser: (id: string) => {
        calls++;
        if (down) {
          return Promise.reject(new HttpError("enrichment", 503, "", { retryAfterMs: 2000 }));
        }
        return Promise.resolve({ user_id: id, tier: "gold" });
      },
      getUsers: () => Promise.reject(new Error("batching is off in this test")),
    },
    breaker,
    limiter: { run: (fn) => fn() },
    cacheTtlMs: 1000,
    cacheMaxEntries: 10,
    batchMax: 1,
    batchWaitMs: 0,
    clock,
  });
  assert.deepEqual(await source.lookup("u1"), {
    status: "ok",
    profile: { user_id: "u1", tier: "gold" },
  });
  clock.set(5000); // past the TTL; the API browns out and the breaker opens
  down = true;
  breaker.record(false, 2000);
  breaker.record(false, 2000);
  assert.equal(breaker.state, "open");
  const before = calls;
  assert.deepEqual(await source.lookup("u1"), {
    status: "stale",
    profile: { user_id: "u1", tier: "gold" },
  });
  assert.equal(calls, before, "no call while the breaker is open");
  clock.set(7000); // Retry-After has passed: a probe goes out and succeeds
  down = false;
  assert.equal((await source.lookup("u1")).status, "ok");
  assert.equal(calls, before + 1);
});

Deno.test("profile source: cached() answers a fresh hit without a request, and nothing else", async () => {
  const fetched: string[] = [];
  const { profiles } = source(fetched);
  assert.equal(profiles.cached("7"), undefined, "a miss asks lookup()");
  assert.equal((await profiles.lookup("7")).status, "ok");
  assert.deepEqual(profiles.cached("7"), { status: "ok", profile: { user_id: "x", segment: "s" } });
  assert.equal(fetched.length, 1, "the hit made no request");
});

Deno.test("profile source: a lookup that waited for a slot while the breaker opened is not sent", async () => {
  const clock = new FakeClock({ start: 0 });
  const breaker = new CircuitBreaker({ name: "enrichment", consecutiveFailures: 1, clock });
  const slots = new Semaphore({ limit: 1 });
  const sent: string[] = [];
  const source = new ProfileSource({
    client: {
      getUser: (id: string) => {
        sent.push(id);
        return Promise.reject(new HttpError("enrichment", 503, "down"));
      },
      getUsers: () => Promise.reject(new Error("batching is off in this test")),
    },
    breaker,
    limiter: {
      run: async (fn) => {
        const release = await slots.acquire();
        try {
          return await fn();
        } finally {
          release();
        }
      },
    },
    cacheTtlMs: 1000,
    cacheMaxEntries: 10,
    batchMax: 1,
    batchWaitMs: 0,
    clock,
  });
  // u2 queues behind u1 for the one slot; u1's failure opens the breaker before u2 gets it.
  const [first, second] = await Promise.allSettled([source.lookup("u1"), source.lookup("u2")]);
  assert.deepEqual(sent, ["u1"], "the queued lookup met the open breaker, not the downstream");
  assert.equal(breaker.state, "open");
  assert.ok(first.status === "rejected" && first.reason instanceof HttpError);
  assert.ok(second.status === "rejected" && second.reason instanceof CircuitOpenError);
});
