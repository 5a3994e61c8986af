// deno-lint-ignore-file no-explicit-any
import assert from "node:assert/strict";
import { FakeClock } from "../support/fake_clock.ts";
import { buildDataset } from "../../lab/dataset.ts";
import { type EnrichSim, type EnrichSimOptions, startEnrichSim } from "../../lab/enrich_sim.ts";

const dataset = buildDataset({ users: 200, seed: 7 });

async function getJson(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url, init);
  const body = await res.json();
  return { status: res.status, headers: res.headers, body };
}

/** The simulator on 127.0.0.1 for `fn`, closed after it. */
async function withSim(options: EnrichSimOptions, fn: (sim: EnrichSim) => Promise<void>) {
  const sim = startEnrichSim(options);
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

Deno.test("enrich sim: dataset: deterministic, leading-zero ids with distinct zero-less twins", () => {
  const again = buildDataset({ users: 200, seed: 7 });
  assert.deepEqual(again.knownIds, dataset.knownIds);
  assert.deepEqual(again.profile(dataset.knownIds[5]!), dataset.profile(dataset.knownIds[5]!));
  assert.notDeepEqual(buildDataset({ users: 200, seed: 8 }).knownIds, dataset.knownIds);
  const zeroIds = dataset.knownIds.filter((id) => id.startsWith("0"));
  assert.ok(zeroIds.length > 0, "some ids have leading zeros");
  const twin = zeroIds.find((id) => dataset.profile(id.replace(/^0+/, "")));
  assert.ok(twin, "a leading-zero id has a zero-less twin");
  assert.notDeepEqual(dataset.profile(twin), dataset.profile(twin.replace(/^0+/, "")));
  assert.equal(dataset.profile(dataset.unknownId(3)), undefined);
  assert.notEqual(dataset.unknownId(3), dataset.unknownId(4));
});

Deno.test("enrich sim: single lookup returns the profile plus meta; 404 for unknown ids", async () => {
  await withSim({ dataset, instant: true }, async (sim) => {
    const id = dataset.knownIds.find((x) => x.startsWith("0"))!;
    const ok = await getJson(`${sim.url}/v1/users/${encodeURIComponent(id)}`);
    assert.equal(ok.status, 200);
    const { meta, ...profile } = ok.body;
    assert.deepEqual(profile, dataset.profile(id));
    assert.equal(meta.scenario, "io_mild");
    assert.equal(typeof meta.request_id, "string");
    assert.equal(meta.simulated_error, null);
    for (
      const key of [
        "segment",
        "country",
        "city",
        "age_bucket",
        "risk_score",
        "is_premium",
        "interests",
        "signup_ts",
        "features",
      ]
    ) {
      assert.ok(Object.hasOwn(ok.body, key), key);
    }
    const unknown = await getJson(`${sim.url}/v1/users/${dataset.unknownId(0)}`);
    assert.equal(unknown.status, 404);
    // Coercion to a number drops the zeros; that is another (or no) user, never this one.
    const coerced = await getJson(`${sim.url}/v1/users/${Number(id)}`);
    if (coerced.status === 200) assert.notEqual(coerced.body.user_id, id);
    const health = await getJson(`${sim.url}/healthz`);
    assert.equal(health.status, 200);
    const stats = sim.stats();
    assert.equal(stats.singleRequests, 3);
    assert.equal(stats.idsServed, coerced.status === 200 ? 2 : 1);
    assert.equal(stats.requests, 4);
  });
});

Deno.test("enrich sim: percent-decodes the id in the path", async () => {
  await withSim({ dataset, instant: true }, async (sim) => {
    const id = dataset.knownIds[0]!;
    const encoded = [...id].map((c) => `%${c.charCodeAt(0).toString(16)}`).join("");
    const res = await getJson(`${sim.url}/v1/users/${encoded}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.user_id, id);
    const bad = await getJson(`${sim.url}/v1/users/%E0%A4%A`);
    assert.equal(bad.status, 400);
  });
});

Deno.test("enrich sim: batch splits users, missing; caps at 100; rejects non-string ids", async () => {
  await withSim({ dataset, instant: true }, async (sim) => {
    const known = dataset.knownIds.slice(0, 3);
    const unknown = dataset.unknownId(9);
    const post = (body: unknown) =>
      getJson(`${sim.url}/v1/users:batch`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const res = await post({ user_ids: [...known, unknown] });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.users.map((u: { user_id: string }) => u.user_id), known);
    assert.deepEqual(res.body.users[1], dataset.profile(known[1]!));
    assert.deepEqual(res.body.missing, [unknown]);
    assert.deepEqual(res.body.errors, []);
    assert.equal(res.body.meta.scenario, "io_mild");

    const tooMany = await post({ user_ids: Array.from({ length: 101 }, (_, i) => String(i + 1)) });
    assert.equal(tooMany.status, 400);
    const hundred = await post({ user_ids: Array.from({ length: 100 }, (_, i) => String(i + 1)) });
    assert.equal(hundred.status, 200);
    const numbers = await post({ user_ids: [123] });
    assert.equal(numbers.status, 400);
    const get = await getJson(`${sim.url}/v1/users:batch`);
    assert.equal(get.status, 405);
    const stats = sim.stats();
    assert.equal(stats.batchRequests, 4);
    assert.equal(stats.idsRequested, 104);
  });
});

Deno.test("enrich sim: overload limit answers 429 with Retry-After", async () => {
  const sim = startEnrichSim({ dataset, maxInFlight: 1, slowEvery: 1, slowMs: 60_000 });
  const hung = new AbortController();
  const first = fetch(`${sim.url}/v1/users/${dataset.knownIds[0]}`, { signal: hung.signal })
    .then((r) => r.body?.cancel(), () => undefined);
  try {
    // Wait until the slow request is in flight, then the next one is over the limit.
    while (sim.stats().inFlight < 1) await new Promise((r) => setTimeout(r, 5));
    const res = await getJson(`${sim.url}/v1/users/${dataset.knownIds[1]}`);
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.equal(res.body.error, "overloaded");
  } finally {
    hung.abort();
    await first;
    await sim.close();
  }
});

Deno.test("enrich sim: flaky is deterministic from the seed and fails often", async () => {
  const run = async () => {
    const clock = new FakeClock({ start: 0 });
    const sim = startEnrichSim({
      dataset,
      scenario: "flaky",
      seed: 3,
      now: clock.now,
      sleep: () => Promise.resolve(),
    });
    try {
      const out: string[] = [];
      for (let i = 0; i < 60; i++) {
        clock.advance(10);
        const res = await fetch(`${sim.url}/v1/users/${dataset.knownIds[i % 10]}`);
        const body = await res.json();
        out.push(
          `${res.status}:${res.headers.get("retry-after") ?? ""}:${body.meta?.latency_ms ?? ""}`,
        );
      }
      return out;
    } finally {
      await sim.close();
    }
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(a, b);
  const failures = a.filter((s) => !s.startsWith("200")).length;
  assert.ok(failures >= 3, `flaky should fail sometimes, got ${failures}/60`);
  assert.ok(a.some((s) => s.startsWith("429:1:")), "a 429 carries Retry-After");
});

Deno.test("enrich sim: brownout answers 503 with Retry-After inside its window only", async () => {
  const clock = new FakeClock({ start: 0 });
  await withSim({
    dataset,
    scenario: "brownout",
    now: clock.now,
    sleep: () => Promise.resolve(),
  }, async (sim) => {
    const statuses = async () => {
      const out: number[] = [];
      for (let i = 0; i < 40; i++) {
        const res = await fetch(`${sim.url}/v1/users/${dataset.knownIds[0]}`);
        if (res.status === 503) assert.equal(res.headers.get("retry-after"), "2");
        await res.body?.cancel();
        out.push(res.status);
      }
      return out;
    };
    clock.set(1000); // the first request starts the clock: inside the first 3 s window
    const inside = await statuses();
    clock.set(7000); // outside
    const outside = await statuses();
    clock.set(14_000); // 13 s after the first request: inside the second window (every 12 s)
    const again = await statuses();
    assert.ok(inside.filter((s) => s === 503).length >= 10, `503s in window: ${inside}`);
    assert.equal(outside.filter((s) => s === 503).length, 0);
    assert.ok(again.filter((s) => s === 503).length >= 10, `503s in window 2: ${again}`);
    // the bench's "calls during the brownout windows": the 80 inside, none of the 40 outside
    assert.equal(sim.stats().brownoutRequests, 80);
  });
});

Deno.test("enrich sim: flaky batches put some ids in errors", async () => {
  await withSim({
    dataset,
    scenario: "flaky",
    seed: 5,
    sleep: () => Promise.resolve(),
  }, async (sim) => {
    let perIdErrors = 0;
    let served = 0;
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${sim.url}/v1/users:batch`, {
        method: "POST",
        body: JSON.stringify({ user_ids: dataset.knownIds.slice(0, 50) }),
      });
      const body = await res.json();
      if (res.status !== 200) continue;
      perIdErrors += body.errors.length;
      served += body.users.length;
      assert.equal(body.users.length + body.errors.length + body.missing.length, 50);
    }
    assert.ok(perIdErrors > 0, "some per-id errors");
    assert.equal(sim.stats().idsServed, served);
  });
});
