/**
 * Fault: hostile message bodies. 10,000+ generated bad bodies go through
 * parseMessage directly, and a few hundred SQS-legal ones through a running
 * worker (in process, fauxqs and fake downstreams on 127.0.0.1), with valid
 * messages interleaved.
 */
import assert from "node:assert/strict";
import { createRng, type Rng } from "../../lab/prng.ts";
import { MAX_DEPTH, parseMessage } from "../../src/domain/message_schema.ts";
import { runWorker, waitFor } from "../support/lab_env.ts";
import { startRig } from "../support/fault_kit.ts";

const ODD = [
  "\u0000",
  "\u0001",
  "\u001f",
  "\u007f",
  "\u2028",
  "\u2029",
  "\ufeff",
  "\ufffd",
  "\ud800",
  "\udfff",
  "💥",
  "e\u0301",
  "\u202e",
  "𝔘",
  "\\",
  '"',
  "\n",
  "\r",
  "\t",
  "{",
  "]",
];

function oddString(rng: Rng, max = 20): string {
  let s = "";
  const n = rng.int(0, max);
  for (let i = 0; i < n; i++) {
    s += rng.chance(0.5) ? rng.pick(ODD) : String.fromCodePoint(rng.int(0, 0x10ffff));
  }
  return s;
}

function nested(depth: number, leaf: unknown, asArray: boolean): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = asArray ? [value] : { a: value };
  return value;
}

/** A valid message with awkward but legal content (odd unicode, pollution keys as data). */
function validObject(rng: Rng, id: string): Record<string, unknown> {
  const payload = JSON.parse(
    `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"n":${
      rng.int(0, 1e6)
    }}`,
  ) as Record<string, unknown>;
  payload.text = oddString(rng).replace(/[\ud800-\udfff]/g, "?");
  payload.deep = nested(rng.int(1, 20), rng.int(0, 9), rng.chance(0.5));
  payload.big = 1e308;
  return { message_id: id, user_id: `u-${id}`, event_ts: rng.int(0, 2e9), payload };
}

const NUMBER_MARK = "@@NUMBER@@";

/** One way to break a valid message; each returns the body text. */
const BREAKERS: Array<(rng: Rng, base: Record<string, unknown>) => string> = [
  // wrong types
  (rng, base) => {
    const field = rng.pick(["message_id", "user_id", "event_ts", "payload"]);
    const wrong: Record<string, unknown[]> = {
      message_id: [null, 1, [], {}, true, ""],
      user_id: [null, [], {}, true, "", 1.5, -1],
      event_ts: [null, true, [], {}, "not a date", "2025-01-01T00:00:00", "2025-02-30T00:00:00Z"],
      payload: [null, [], "text", 1, true],
    };
    return JSON.stringify({ ...base, [field]: rng.pick(wrong[field]!) });
  },
  // a missing field, with pollution keys at the top
  (rng, base) => {
    const copy: Record<string, unknown> = { ...base };
    delete copy[rng.pick(["message_id", "user_id", "event_ts", "payload"])];
    const pollution = '"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":1}}';
    return `{${pollution},${JSON.stringify(copy).slice(1)}`;
  },
  // numbers out of range
  (rng, base) => {
    const field = rng.pick(["user_id", "event_ts"]);
    const raw = field === "user_id"
      ? rng.pick(["1e400", "-1e400", "9007199254740993", "-1", "1.5", "-0.5"])
      : rng.pick(["1e400", "-1e400"]);
    const text = JSON.stringify({ ...base, [field]: NUMBER_MARK });
    return text.replace(`"${NUMBER_MARK}"`, raw);
  },
  // nested deeper than allowed, in the payload or as the whole body
  (rng, base) => {
    const depth = MAX_DEPTH + rng.int(1, 50);
    if (rng.chance(0.2)) return "[".repeat(depth * rng.int(1, 100)); // unterminated too
    return JSON.stringify({ ...base, payload: { deep: nested(depth, 1, rng.chance(0.5)) } });
  },
  // broken syntax: truncated, trailing garbage, single quotes, comments
  (rng, base) => {
    const text = JSON.stringify(base);
    switch (rng.int(0, 3)) {
      case 0:
        return text.slice(0, rng.int(0, text.length - 1));
      case 1:
        return text + rng.pick(["}", ",", "x", " {}", "\u0000"]);
      case 2:
        return text.replaceAll('"', "'");
      default:
        return `/* ${oddString(rng)} */${text}`;
    }
  },
  // not an object
  (rng, base) =>
    rng.pick([
      JSON.stringify([base]),
      JSON.stringify(JSON.stringify(base)),
      "null",
      "1e400",
      "true",
      '"__proto__"',
      "",
      " ",
    ]),
  // binary-ish noise and odd unicode
  (rng) => oddString(rng, 200),
  // huge: a large payload with a field broken, or a large blob of non-JSON
  (rng, base) => {
    const size = rng.int(100_000, 200_000);
    if (rng.chance(0.5)) return "x".repeat(size);
    return JSON.stringify({ ...base, user_id: null, payload: { blob: "y".repeat(size) } });
  },
];

function badBody(rng: Rng, i: number): string {
  const base = validObject(rng, `bad-${i}`);
  // Huge bodies are rarer, so 10,000 of them stay fast.
  const index = rng.chance(0.01) ? BREAKERS.length - 1 : rng.int(0, BREAKERS.length - 2);
  return BREAKERS[index]!(rng, base);
}

/** SQS accepts #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and #x10000+; fauxqs not the last. */
function sqsLegal(body: string): boolean {
  if (body.length === 0) return false;
  for (const ch of body) {
    const c = ch.codePointAt(0)!;
    const ok = c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) ||
      (c >= 0xe000 && c <= 0xfffd);
    if (!ok) return false;
  }
  return true;
}

function assertPrototypeClean(): void {
  const probe = {} as Record<string, unknown>;
  assert.equal(probe.polluted, undefined, "Object.prototype polluted");
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"), false);
}

Deno.test("fuzz: 10,000+ bad bodies through parseMessage: never throws, each poison with a reason", () => {
  const rng = createRng(4004);
  const before = Object.getOwnPropertyNames(Object.prototype).sort();
  let count = 0;
  for (let i = 0; i < 12_000; i++) {
    const body = badBody(rng, i);
    let result;
    try {
      result = parseMessage(body);
    } catch (error) {
      assert.fail(
        `parseMessage threw on body #${i} ${JSON.stringify(body.slice(0, 200))}: ${error}`,
      );
    }
    assert.equal(result.ok, false, `body #${i} passed: ${JSON.stringify(body.slice(0, 300))}`);
    if (!result.ok) {
      assert.equal(typeof result.reason, "string");
      assert.ok(result.reason.length > 0 && result.reason.length <= 256, result.reason);
    }
    count++;
    // Interleaved valid messages with pollution keys and odd unicode stay unchanged.
    if (i % 10 === 0) {
      const valid = validObject(rng, `ok-${i}`);
      const text = JSON.stringify(valid);
      const parsed = parseMessage(text);
      assert.ok(parsed.ok, `valid body #${i} refused: ${!parsed.ok && parsed.reason}`);
      if (parsed.ok) {
        assert.equal(parsed.message.message_id, `ok-${i}`);
        assert.equal(
          JSON.stringify(parsed.message.payload),
          JSON.stringify(JSON.parse(text).payload),
        );
        assert.ok(Object.hasOwn(parsed.message.payload, "__proto__"), "__proto__ kept as data");
      }
    }
  }
  assert.ok(count >= 10_000);
  assertPrototypeClean();
  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before);
});

Deno.test("fuzz: a few hundred bad bodies through the running worker: all in the DLQ as VALIDATION, valid ones accepted unchanged", async () => {
  const rng = createRng(4005);
  const bad: string[] = [];
  for (let i = 0; bad.length < 300; i++) {
    const body = badBody(rng, i);
    if (sqsLegal(body)) bad.push(body);
  }
  const valid = Array.from(
    { length: 20 },
    (_, i) => JSON.stringify(validObject(rng, `fine-${i}`)).replace(/[\ud800-\udfff]/g, "?"),
  );
  // Interleave: a valid one after every 15 bad ones.
  const bodies: string[] = [];
  bad.forEach((body, i) => {
    bodies.push(body);
    if (i % 15 === 14) bodies.push(valid[(i - 14) / 15]!);
  });
  assert.equal(bodies.length, bad.length + valid.length);

  const { lab, validator, env, close } = await startRig();
  try {
    // SendMessageBatch allows 1 MiB per call: batch by size as well as count.
    let batch: string[] = [];
    let size = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const result = await lab.admin.call<{ Failed?: unknown[] }>("SendMessageBatch", {
        QueueUrl: lab.queueUrl,
        Entries: batch.map((body, j) => ({ Id: String(j), MessageBody: body })),
      });
      assert.deepEqual(result.Failed ?? [], [], "fauxqs took every body");
      batch = [];
      size = 0;
    };
    for (const body of bodies) {
      const bytes = new TextEncoder().encode(body).length;
      if (batch.length === 10 || size + bytes > 900_000) await flush();
      batch.push(body);
      size += bytes;
    }
    await flush();

    const worker = runWorker(
      env({ LOG_LEVEL: "warn" }),
    );
    try {
      await waitFor(
        async () =>
          (await lab.depth()) === 0 && (await lab.depth(lab.dlqUrl)) === bad.length &&
          validator.accepted.size === valid.length,
        "every body settled",
        60_000,
      ).catch(async (error) => {
        const outcomes = ["accepted", "dead_lettered", "released", "duplicate"].map((o) =>
          `${o}=${worker.metrics.messages.get({ outcome: o })}`
        );
        throw new Error(
          `${error.message}: main ${await lab.depth()}, dlq ${await lab.depth(lab.dlqUrl)}, ${
            outcomes.join(" ")
          }\n${worker.lines.slice(0, 5).join("\n").slice(0, 3000)}`,
        );
      });
      const health = await worker.app.request("/healthz");
      assert.equal(health.status, 200, "the worker never crashed");
      await health.body?.cancel();
    } finally {
      await worker.stop();
    }
    assertPrototypeClean();
    assert.equal(worker.metrics.messages.get({ outcome: "dead_lettered" }), bad.length);
    assert.equal(worker.metrics.messages.get({ outcome: "released" }), 0, "none bounced");

    const dlq = await lab.drainDlq();
    assert.deepEqual(dlq.map((m) => m.body).sort(), [...bad].sort(), "DLQ copies byte for byte");
    for (const m of dlq) {
      assert.equal(m.error, "VALIDATION");
      assert.ok(m.reason && m.reason.length > 0, "a reason");
    }
    // Valid messages came through unchanged, each once.
    assert.equal(validator.docs.length, valid.length);
    for (const text of valid) {
      const original = JSON.parse(text) as Record<string, unknown>;
      const doc = validator.docs.find((d) => d.message_id === original.message_id);
      assert.ok(doc, `${original.message_id} accepted`);
      assert.equal(JSON.stringify(doc.payload), JSON.stringify(original.payload));
      assert.equal(doc.user_id, original.user_id);
      assert.equal(doc.event_ts, original.event_ts);
    }
  } finally {
    await close();
  }
});
