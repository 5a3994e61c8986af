// deno-lint-ignore-file no-explicit-any
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { buildDataset } from "../../lab/dataset.ts";
import type { ExpectedMessage } from "../../lab/generator.ts";
import { checkDocument, deepEqual, startValidatorSim } from "../../lab/validator_sim.ts";
import { FakeClock } from "../support/fake_clock.ts";

const dataset = buildDataset({ users: 50, seed: 2 });
const knownId = dataset.knownIds.find((id) => id.startsWith("0")) ?? dataset.knownIds[0]!;
const expected = new Map<string, ExpectedMessage>([
  ["m-1", {
    message_id: "m-1",
    user_id: knownId,
    event_ts: 1735689600,
    payload: { a: [1, { b: null }] },
    known: true,
  }],
  ["m-2", {
    message_id: "m-2",
    user_id: dataset.unknownId(0),
    event_ts: 1735689600.25,
    payload: {},
    known: false,
  }],
]);

function goodDoc(): Record<string, any> {
  return {
    message_id: "m-1",
    user_id: knownId,
    event_ts: 1735689600,
    payload: { a: [1, { b: null }] },
    user: { ...dataset.profile(knownId)! },
    enrichment: { status: "ok" },
  };
}

function unknownDoc(): Record<string, any> {
  return {
    message_id: "m-2",
    user_id: dataset.unknownId(0),
    event_ts: 1735689600.25,
    payload: {},
    user: null,
    enrichment: { status: "unknown_user" },
  };
}

Deno.test("validator sim: checkDocument: accepts the exact shapes, including stale and unknown users", () => {
  assert.equal(checkDocument(goodDoc(), expected, dataset), undefined);
  assert.equal(
    checkDocument({ ...goodDoc(), enrichment: { status: "stale" } }, expected, dataset),
    undefined,
  );
  assert.equal(checkDocument(unknownDoc(), expected, dataset), undefined);
  // Key order does not matter.
  const reordered = Object.fromEntries(Object.entries(goodDoc()).reverse());
  assert.equal(checkDocument(reordered, expected, dataset), undefined);
});

Deno.test("validator sim: checkDocument: rejects each wrong field with its reason", () => {
  const cases: Array<[string, unknown]> = [
    ["not_object", [goodDoc()]],
    ["not_object", null],
    ["keys", { ...goodDoc(), extra: 1 }],
    [
      "keys",
      (() => {
        const d = goodDoc();
        delete d.enrichment;
        return d;
      })(),
    ],
    ["message_id", { ...goodDoc(), message_id: 1 }],
    ["unknown_message_id", { ...goodDoc(), message_id: "m-404", event_ts: "2025-01-01" }],
    ["unknown_message_id", { ...goodDoc(), message_id: "m-404", user_id: Number(knownId) }],
    ["user_id", { ...goodDoc(), user_id: Number(knownId) }],
    ["user_id", { ...goodDoc(), user_id: knownId.replace(/^0+/, "") + "x" }],
    ["event_ts", { ...goodDoc(), event_ts: "2025-01-01T00:00:00Z" }],
    ["event_ts", { ...goodDoc(), event_ts: 1735689601 }],
    ["payload", { ...goodDoc(), payload: { a: [1, { b: 0 }] } }],
    ["payload", { ...goodDoc(), payload: { a: [1, { b: null }], c: 1 } }],
    ["enrichment", { ...goodDoc(), enrichment: "ok" }],
    ["enrichment", { ...goodDoc(), enrichment: { status: "unknown_user" } }],
    ["user", { ...goodDoc(), user: null }],
    ["user", { ...goodDoc(), user: { ...goodDoc().user, meta: { request_id: "x" } } }],
    ["user", {
      ...goodDoc(),
      user: { ...goodDoc().user, risk_score: String(goodDoc().user.risk_score) },
    }],
    ["user", { ...unknownDoc(), user: {} }],
    ["enrichment", { ...unknownDoc(), enrichment: { status: "ok" } }],
    ["event_ts", { ...unknownDoc(), event_ts: 1735689600 }],
  ];
  for (const [reason, doc] of cases) {
    const problem = checkDocument(doc, expected, dataset);
    assert.equal(
      problem?.reason,
      reason,
      `${JSON.stringify(doc).slice(0, 120)} -> ${JSON.stringify(problem)}`,
    );
    assert.ok(problem.detail.length > 0 && problem.detail.length < 200);
  }
});

Deno.test("validator sim: deepEqual: types and key sets matter, order of keys does not", () => {
  assert.ok(deepEqual({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }));
  assert.ok(!deepEqual({ a: 1 }, { a: "1" }));
  assert.ok(!deepEqual([1, 2], { 0: 1, 1: 2 }));
  assert.ok(!deepEqual({ a: undefined }, { b: undefined }));
  assert.ok(!deepEqual({}, null));
});

Deno.test("validator sim: 200 accepted, 400 with reason, duplicates counted, /stats", async () => {
  const clock = new FakeClock({ start: 1000 });
  const sim = startValidatorSim({ dataset, expected, instant: true, now: clock.now });
  const post = async (path: string, body: string) => {
    const res = await fetch(`${sim.url}${path}`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    return { status: res.status, body: await res.json() };
  };
  try {
    const ok = await post("/ingest", JSON.stringify(goodDoc()));
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, "accepted");
    clock.set(2000);
    const again = await post("/ingest/", JSON.stringify(goodDoc()));
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    const bad = await post("/ingest", JSON.stringify({ ...unknownDoc(), user_id: 9 }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.reason, "user_id");
    const notJson = await post("/ingest", "{nope");
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.reason, "not_json");
    const wrongPath = await post("/", JSON.stringify(goodDoc()));
    assert.equal(wrongPath.status, 404);

    assert.equal(sim.acceptedAt.get("m-1"), 1000);
    assert.equal(sim.acceptCount.get("m-1"), 2);
    assert.deepEqual(sim.rejections.map((r) => [r.messageId, r.reason]), [["m-2", "user_id"], [
      undefined,
      "not_json",
    ]]);
    const statsRes = await fetch(`${sim.url}/stats`);
    const stats = await statsRes.json();
    assert.deepEqual(stats, {
      requests: 4,
      accepted: 1,
      duplicates: 1,
      rejected: 2,
      rejectedByReason: { user_id: 1, not_json: 1 },
      errors5xx: 0,
      redirects: 0,
      followedRedirects: 0,
      orderInversions: 0,
    });
  } finally {
    await sim.close();
  }
});

Deno.test("validator sim: flaky answers some 5xx, deterministically from the seed", async () => {
  const run = async () => {
    const sim = startValidatorSim({
      dataset,
      expected,
      scenario: "flaky",
      seed: 11,
      sleep: () => Promise.resolve(),
    });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 400; i++) {
        const res = await fetch(`${sim.url}/ingest`, {
          method: "POST",
          body: JSON.stringify(unknownDoc()),
        });
        await res.body?.cancel();
        codes.push(res.status);
      }
      assert.equal(sim.stats().errors5xx, codes.filter((c) => c === 503).length);
      return codes;
    } finally {
      await sim.close();
    }
  };
  const a = await run();
  assert.deepEqual(a, await run());
  assert.ok(a.includes(503), "some 503s");
  assert.ok(a.filter((c) => c === 200).length > 350);
});

Deno.test("validator sim: redirectEvery redirects a first submission only; the worker's client never follows it", async () => {
  const { ValidatorClient } = await import("../../src/adapters/validator_client.ts");
  const { RedirectError } = await import("../../src/lib/errors.ts");
  const sim = startValidatorSim({ dataset, expected, instant: true, redirectEvery: 1 });
  try {
    const post = (doc: unknown) =>
      fetch(`${sim.url}/ingest`, {
        method: "POST",
        body: JSON.stringify(doc),
        redirect: "manual",
      }).then(async (r) => ({
        status: r.status,
        location: r.headers.get("location"),
        body: await r.text(),
      }));
    const first = await post(goodDoc());
    assert.equal(first.status, 307);
    assert.equal(first.location, "/login");
    assert.equal((await post(goodDoc())).status, 200, "the retry is accepted");
    // The sluice client sees the next first submission as a failed call, not an acceptance.
    const client = new ValidatorClient({
      clock: systemClock,
      url: `${sim.url}/ingest`,
      timeoutMs: 2000,
    });
    await assert.rejects(client.submit(unknownDoc()), RedirectError);
    assert.equal((await client.submit(unknownDoc())).accepted, true);
    const stats = sim.stats();
    assert.equal(stats.redirects, 2);
    assert.equal(stats.followedRedirects, 0);
    assert.equal(stats.accepted, 2);
    assert.equal(stats.duplicates, 0);
  } finally {
    await sim.close();
  }
});

Deno.test("validator sim: checkDocument: a well-formed message the lab did not generate (sent by hand) is judged on its own", () => {
  const hand = { ...goodDoc(), message_id: "by-hand-1", payload: { note: "aws sqs send-message" } };
  assert.equal(checkDocument(hand, expected, dataset), undefined);
  const unknown = { ...unknownDoc(), message_id: "by-hand-2", payload: {} };
  assert.equal(checkDocument(unknown, expected, dataset), undefined);
  const wrongProfile = { ...hand, user: { ...goodDoc().user, segment: "nope" } };
  assert.equal(checkDocument(wrongProfile, expected, dataset)?.reason, "user");
  const knownAsUnknown = { ...hand, user: null, enrichment: { status: "unknown_user" } };
  assert.equal(checkDocument(knownAsUnknown, expected, dataset)?.reason, "enrichment");
});

Deno.test("validator sim: FIFO runs: a message accepted after a later one of its group is an order inversion", async () => {
  const dataset = buildDataset({ users: 20, seed: 3 });
  const user = dataset.knownIds[0]!;
  const expected = new Map<string, ExpectedMessage>();
  for (const seq of [1, 2, 3]) {
    expected.set(`f-${seq}`, {
      message_id: `f-${seq}`,
      user_id: user,
      event_ts: 1,
      payload: { fifo_seq: seq },
      known: true,
      group: `g-${user}`,
      seq,
    });
  }
  const sim = startValidatorSim({ dataset, expected, instant: true });
  try {
    const profile = dataset.profile(user)!;
    const submit = async (seq: number) => {
      const { meta: _, ...fields } = profile as unknown as Record<string, unknown>;
      const res = await fetch(`${sim.url}/ingest`, {
        method: "POST",
        body: JSON.stringify({
          message_id: `f-${seq}`,
          user_id: user,
          event_ts: 1,
          payload: { fifo_seq: seq },
          user: fields,
          enrichment: { status: "ok" },
        }),
      });
      assert.equal(res.status, 200, await res.text());
    };
    await submit(1);
    await submit(3);
    await submit(2); // after 3: an inversion
    await submit(3); // a duplicate, not an inversion
    assert.equal(sim.stats().orderInversions, 1);
    assert.equal(sim.stats().duplicates, 1);
  } finally {
    await sim.close();
  }
});
