import assert from "node:assert/strict";
import { EnrichClient } from "../../src/adapters/enrich_client.ts";
import { CircuitBreaker } from "../../src/lib/circuit_breaker.ts";
import { categoryOf } from "../../src/lib/errors.ts";
import { ProfileSource } from "../../src/flow/profile_source.ts";

function source(fetched: string[]) {
  const fakeFetch = (input: RequestInfo | URL) => {
    fetched.push(String(input));
    return Promise.resolve(Response.json({ user_id: "x", segment: "s" }));
  };
  const breaker = new CircuitBreaker({ name: "enrichment", minimumCalls: 4 });
  const profiles = new ProfileSource({
    client: new EnrichClient({
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
  });
  return { breaker, profiles };
}

Deno.test("hostile ids: a user_id encodeURIComponent refuses is a PERMANENT local error that never trips the enrichment breaker", async () => {
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
