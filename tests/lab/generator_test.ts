import assert from "node:assert/strict";
import { buildDataset } from "../../lab/dataset.ts";
import {
  generateMessages,
  type OutgoingMessage,
  sendMessages,
  toBatches,
  withoutHot,
} from "../../lab/generator.ts";
import type { SqsAdmin } from "../../lab/sqs_admin.ts";

const dataset = buildDataset({ users: 300, seed: 4 });

Deno.test("generator: deterministic from the seed, counts add up", () => {
  const a = generateMessages({ dataset, messages: 1000, seed: 4 });
  const b = generateMessages({ dataset, messages: 1000, seed: 4 });
  assert.deepEqual(a.outgoing, b.outgoing);
  assert.notDeepEqual(generateMessages({ dataset, messages: 1000, seed: 5 }).outgoing, a.outgoing);
  assert.equal(a.poison, 20);
  assert.equal(a.valid, 980);
  assert.equal(a.producerDuplicates, 10);
  assert.equal(a.outgoing.length, 1010);
  assert.equal(a.expected.size, 980);
  assert.equal(new Set(a.poisonBodies).size, 20, "poison bodies are unique");
  assert.equal(a.outgoing.filter((m) => m.duplicate).length, 10);
  // A duplicate is byte for byte the body of an earlier message.
  for (const [idx, m] of a.outgoing.entries()) {
    if (!m.duplicate) continue;
    const first = a.outgoing.findIndex((o) => !o.duplicate && o.messageId === m.messageId);
    assert.ok(first >= 0 && first < idx);
    assert.equal(a.outgoing[first]!.body, m.body);
  }
});

Deno.test("generator: valid bodies match their expectations in every wire shape", () => {
  const set = generateMessages({ dataset, messages: 2000, seed: 9, unknownShare: 0.05 });
  const shapes = new Set<string>();
  for (const m of set.outgoing) {
    if (!m.messageId) continue;
    const body = JSON.parse(m.body);
    const exp = set.expected.get(m.messageId)!;
    assert.equal(String(body.user_id), exp.user_id);
    assert.deepEqual(body.payload, exp.payload);
    assert.equal(exp.known, dataset.profile(exp.user_id) !== undefined);
    if (typeof body.event_ts === "number") {
      assert.equal(body.event_ts, exp.event_ts);
      shapes.add(Number.isInteger(body.event_ts) ? "ts_int" : "ts_float");
    } else {
      assert.match(body.event_ts, /(Z|[+-]\d\d:\d\d)$/);
      assert.equal(Math.floor(Date.parse(body.event_ts) / 1000), exp.event_ts);
      shapes.add(body.event_ts.endsWith("Z") ? "ts_iso_z" : "ts_iso_offset");
    }
    shapes.add(typeof body.user_id === "number" ? "uid_int" : "uid_string");
    if (typeof body.user_id === "number") {
      assert.ok(Number.isSafeInteger(body.user_id) && body.user_id >= 0);
    }
    if (exp.user_id.startsWith("0")) shapes.add("uid_leading_zero");
    if (!exp.known) shapes.add("unknown_user");
  }
  for (
    const s of [
      "ts_int",
      "ts_float",
      "ts_iso_z",
      "ts_iso_offset",
      "uid_int",
      "uid_string",
      "uid_leading_zero",
      "unknown_user",
    ]
  ) {
    assert.ok(shapes.has(s), `missing shape ${s}`);
  }
});

Deno.test("generator: hot users get about hotShare of the messages", () => {
  const set = generateMessages({
    dataset,
    messages: 4000,
    seed: 1,
    hotShare: 0.5,
    unknownShare: 0,
  });
  const hot = new Set(dataset.knownIds.slice(0, 3));
  const onHot = [...set.expected.values()].filter((e) => hot.has(e.user_id)).length;
  assert.ok(onHot > set.valid * 0.4 && onHot < set.valid * 0.6, `${onHot} of ${set.valid}`);
});

Deno.test("generator: every poison body breaks a rule of docs/messages.md", () => {
  const set = generateMessages({ dataset, messages: 520, seed: 2, poisonShare: 0.1 });
  const kinds = new Set(set.outgoing.flatMap((m) => (m.poisonKind ? [m.poisonKind] : [])));
  assert.ok(kinds.size >= 26, `kinds: ${[...kinds]}`);
  for (const body of set.poisonBodies) assert.equal(isValidInput(body), false, body.slice(0, 100));
  for (const m of set.outgoing) if (m.messageId) assert.equal(isValidInput(m.body), true, m.body);
  const huge = set.outgoing.find((m) => m.poisonKind === "payload_string_huge")!;
  assert.ok(huge.body.length > 100_000 && huge.body.length < 1_000_000);
});

/** An independent reading of docs/messages.md, to check the generator's labels. */
function isValidInput(body: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return false;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  if (!Object.hasOwn(o, "message_id") || typeof o.message_id !== "string" || o.message_id === "") {
    return false;
  }
  const uid = o.user_id;
  const uidOk = (typeof uid === "string" && uid !== "") ||
    (typeof uid === "number" && Number.isSafeInteger(uid) && uid >= 0);
  if (!uidOk) return false;
  const ts = o.event_ts;
  const tsOk = (typeof ts === "number" && Number.isFinite(ts)) ||
    (typeof ts === "string" &&
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(ts) &&
      Number.isFinite(Date.parse(ts)));
  if (!tsOk) return false;
  return typeof o.payload === "object" && o.payload !== null && !Array.isArray(o.payload);
}

Deno.test("generator: toBatches: at most 10 entries and 900 KB per call", () => {
  const msgs: OutgoingMessage[] = Array.from({ length: 25 }, (_, i) => ({
    body: i % 7 === 0 ? "y".repeat(400_000) : `{"i":${i}}`,
    duplicate: false,
  }));
  const batches = toBatches(msgs);
  assert.deepEqual(batches.flat(), msgs);
  for (const b of batches) {
    assert.ok(b.length <= 10);
    assert.ok(b.reduce((n, m) => n + m.body.length, 0) <= 900_000 || b.length === 1);
  }
});

Deno.test("generator: sendMessages: sends every body once, retrying failed entries", async () => {
  const received: string[] = [];
  let failOnce = true;
  const sqs: SqsAdmin = {
    call: <T>(action: string, body: Record<string, unknown>) => {
      assert.equal(action, "SendMessageBatch");
      const entries = body.Entries as Array<{ Id: string; MessageBody: string }>;
      const failed: Array<{ Id: string }> = [];
      for (const e of entries) {
        if (failOnce) {
          failOnce = false;
          failed.push({ Id: e.Id });
          continue;
        }
        received.push(e.MessageBody);
      }
      return Promise.resolve({ Failed: failed } as T);
    },
    createQueue: () => Promise.reject(new Error("unused")),
    createQueueWithDlq: () => Promise.reject(new Error("unused")),
    attributes: () => Promise.reject(new Error("unused")),
    depth: () => Promise.reject(new Error("unused")),
  };
  const set = generateMessages({ dataset, messages: 95, seed: 3 });
  const sent = await sendMessages({
    sqs,
    queueUrl: "q",
    outgoing: set.outgoing,
    sleep: () => Promise.resolve(),
  });
  assert.equal(sent, set.outgoing.length);
  assert.deepEqual(received.sort(), set.outgoing.map((m) => m.body).sort());
});

Deno.test("generator: without the hot users: the quiet messages alone, the same bodies in the same order", () => {
  const dataset = buildDataset({ users: 500, seed: 3 });
  const set = generateMessages({ dataset, messages: 2000, seed: 3, hotShare: 0.5, hotUsers: 3 });
  const quiet = withoutHot(set);
  const hot = new Set(set.hot);
  assert.ok(set.valid - quiet.valid > 800, `${set.valid - quiet.valid} hot messages left out`);
  assert.equal(quiet.poison, set.poison);
  for (const e of quiet.expected.values()) assert.ok(!hot.has(e.user_id));
  const kept = set.outgoing.filter((m) =>
    m.messageId === undefined || !hot.has(set.expected.get(m.messageId)!.user_id)
  );
  assert.deepEqual(quiet.outgoing.map((m) => m.body), kept.map((m) => m.body));
});
