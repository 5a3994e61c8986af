import assert from "node:assert/strict";
import { ProfileSource } from "../../src/flow/profile_source.ts";
import { CircuitBreaker } from "../../src/lib/circuit_breaker.ts";
import { HttpError } from "../../src/lib/errors.ts";

Deno.test("an open enrichment breaker still serves a cached profile, as stale", async () => {
  let t = 0;
  const breaker = new CircuitBreaker({ name: "enrichment", minimumCalls: 2, now: () => t });
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
    now: () => t,
  });
  assert.deepEqual(await source.lookup("u1"), {
    status: "ok",
    profile: { user_id: "u1", tier: "gold" },
  });
  t = 5000; // past the TTL; the API browns out and the breaker opens
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
  t = 7000; // Retry-After has passed: a probe goes out and succeeds
  down = false;
  assert.equal((await source.lookup("u1")).status, "ok");
  assert.equal(calls, before + 1);
});
