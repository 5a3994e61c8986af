import assert from "node:assert/strict";
import {
  jsonDepth,
  MAX_DEPTH,
  parseIsoSeconds,
  parseMessage,
} from "../../src/domain/message_schema.ts";

const valid = { message_id: "m-1", user_id: "00123", event_ts: 1735689600, payload: { a: 1 } };

function ok(body: unknown) {
  const result = parseMessage(typeof body === "string" ? body : JSON.stringify(body));
  assert.ok(result.ok, `expected ok, got ${JSON.stringify(result)}`);
  return result.message;
}

function poison(body: unknown): string {
  const result = parseMessage(typeof body === "string" ? body : JSON.stringify(body));
  assert.ok(!result.ok, `expected poison for ${String(body).slice(0, 80)}`);
  return result.reason;
}

Deno.test("schema: a valid message is normalised", () => {
  const m = ok({ ...valid, extra: "ignored" });
  assert.deepEqual(m, {
    message_id: "m-1",
    user_id: "00123",
    event_ts: 1735689600,
    payload: { a: 1 },
  });
});

Deno.test("schema: user_id as a string stays verbatim, an integer becomes its decimal string", () => {
  assert.equal(ok({ ...valid, user_id: "00123" }).user_id, "00123");
  assert.equal(ok({ ...valid, user_id: 123 }).user_id, "123");
  assert.equal(ok({ ...valid, user_id: 0 }).user_id, "0");
  assert.match(poison({ ...valid, user_id: -1 }), /negative/);
  assert.match(poison({ ...valid, user_id: 1.5 }), /user_id/);
  assert.match(poison({ ...valid, user_id: 2 ** 60 }), /safe integer/);
  assert.match(poison({ ...valid, user_id: "" }), /empty/);
  assert.match(poison({ ...valid, user_id: null }), /user_id/);
});

Deno.test("schema: event_ts numbers unchanged, ISO strings with a zone floored", () => {
  assert.equal(ok({ ...valid, event_ts: 1735689600.75 }).event_ts, 1735689600.75);
  assert.equal(ok({ ...valid, event_ts: "2025-01-01T00:00:00Z" }).event_ts, 1735689600);
  assert.equal(ok({ ...valid, event_ts: "2025-01-01T00:00:00.999Z" }).event_ts, 1735689600);
  assert.equal(ok({ ...valid, event_ts: "2025-01-01T01:00:00+01:00" }).event_ts, 1735689600);
  assert.equal(ok({ ...valid, event_ts: "2024-12-31T19:00:00-0500" }).event_ts, 1735689600);
  assert.equal(parseIsoSeconds("1969-12-31T23:59:59.5Z"), -1);
  for (
    const bad of ["2025-01-01T00:00:00", "1735689600", "2025-02-30T00:00:00Z", "yesterday", ""]
  ) {
    assert.match(poison({ ...valid, event_ts: bad }), /event_ts/, bad);
  }
  assert.match(
    poison(`{"message_id":"m","user_id":"1","event_ts":1e400,"payload":{}}`),
    /event_ts/,
  );
});

/** What parseIsoSeconds must agree with: the zone-naming grammar, then Date.parse and a field check. */
function referenceIsoSeconds(value: string): number | undefined {
  const match =
    /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$/
      .exec(value);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s = "00", frac = "", zone = "Z"] = match;
  const offset = zone === "Z" || zone === "z" ? "Z" : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac.slice(0, 4)}${offset}`);
  if (!Number.isFinite(ms) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  // Date.parse rolls Feb 30 over to March 2: the day must be one the month has.
  const year = Number(y), month = Number(mo);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  if (Number(d) > days) return undefined;
  return Math.floor(ms / 1000);
}

Deno.test("schema: parseIsoSeconds agrees with Date.parse on a seeded set of near-ISO strings", () => {
  let seed = 7;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const pick = (options: string[]) => options[Math.floor(random() * options.length)]!;
  const cases = [
    "2024-02-29T12:00Z",
    "2023-02-29T12:00Z",
    "2100-02-29T00:00Z",
    "2000-02-29T00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999+23:59",
    "2024-01-01T24:00:00Z",
    "2024-01-01T00:00:00+24:00",
    "2024-01-01T00:00:00-12:60",
    "2024-01-01T00:00:00.Z",
    "2024-01-01T00:00+0530",
    "2024-01-01T00:00:00+05:3",
    "2024-01-01T00:00:00+05x30",
    "2024-01-01T00:00:00Zz",
    "１９７０-01-01T00:00Z",
  ];
  for (let i = 0; i < 20_000; i++) {
    const ms = Math.floor((random() * 2 - 1) * 62e12);
    const iso = new Date(ms).toISOString();
    if (!/^\d{4}-/.test(iso)) continue;
    const oh = String(Math.floor(random() * 26)).padStart(2, "0");
    const om = String(Math.floor(random() * 62)).padStart(2, "0");
    const zone = pick(["Z", "z", `+${oh}:${om}`, `-${oh}:${om}`, `+${oh}${om}`, "", "+1:00"]);
    const body = pick([iso.slice(0, 19), iso.slice(0, 16), iso.slice(0, 23), iso.slice(0, 21)]);
    const day = pick(["", "", "", "30", "31", "29", "00", "32"]);
    cases.push(day ? `${body.slice(0, 8)}${day}${body.slice(10)}${zone}` : body + zone);
  }
  let valid = 0;
  for (const value of cases) {
    const expected = referenceIsoSeconds(value);
    if (expected !== undefined) valid++;
    assert.equal(parseIsoSeconds(value), expected, value);
  }
  assert.ok(valid > 5_000, `only ${valid} valid cases`);
});

Deno.test("schema: missing and wrongly typed fields are poison with a reason", () => {
  assert.equal(poison({ user_id: "1", event_ts: 1, payload: {} }), "message_id is missing");
  assert.match(poison({ ...valid, message_id: 7 }), /message_id has the wrong type/);
  assert.match(poison({ ...valid, message_id: "" }), /empty/);
  assert.match(poison({ ...valid, payload: [] }), /payload/);
  assert.match(poison({ ...valid, payload: "x" }), /payload/);
  assert.match(poison({ ...valid, payload: null }), /payload/);
});

Deno.test("schema: the hand-written rules give the reasons zod gave, first field first", () => {
  // [body, reason] rows; the zod schema of old produced exactly these (checked on 353 bodies).
  const rows: Array<[string, string]> = [
    [
      '{"message_id":"m","user_id":"u","event_ts":1e999,"payload":{}}',
      "event_ts has the wrong type (a number)",
    ],
    [
      '{"message_id":"m","user_id":1e999,"event_ts":1,"payload":{}}',
      "user_id has the wrong type (a number)",
    ],
    [
      '{"message_id":7,"user_id":null,"event_ts":1,"payload":{}}',
      "message_id has the wrong type (a number)",
    ],
    ['{"message_id":"m","user_id":true,"payload":[]}', "user_id has the wrong type (a boolean)"],
    ['{"message_id":"m","user_id":"u","payload":{}}', "event_ts is missing"],
    [
      '{"message_id":"m","user_id":"u","event_ts":1,"payload":[1]}',
      "payload has the wrong type (an array)",
    ],
    ['{"message_id":"m","user_id":"","event_ts":1,"payload":{}}', "user_id is an empty string"],
  ];
  for (const [body, reason] of rows) assert.equal(poison(body), reason, body);
});

Deno.test("schema: bodies that are not JSON objects are poison", () => {
  assert.match(poison("not json"), /invalid JSON/);
  assert.match(poison(""), /invalid JSON/);
  assert.match(poison("[1,2]"), /array/);
  assert.match(poison("42"), /number/);
  assert.match(poison("null"), /null/);
  assert.match(poison("\u0000\uFFFD\uD800"), /invalid JSON/);
});

Deno.test("schema: deep nesting is refused before parsing", () => {
  const deep = `{"message_id":"m","user_id":"1","event_ts":1,"payload":${"[".repeat(100_000)}${
    "]".repeat(100_000)
  }}`;
  assert.match(poison(deep), /nested deeper/);
  assert.equal(jsonDepth('{"a":"[[[[{{{{"}'), 1);
  assert.equal(jsonDepth('{"a":"\\"[[["}'), 1);
  // A deep but sane payload passes and survives the way out (JSON.stringify recurses).
  const depth = MAX_DEPTH - 2;
  const deepOk = { ...valid, payload: JSON.parse(`${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`) };
  const parsed = parseMessage(JSON.stringify(deepOk));
  assert.ok(parsed.ok);
  assert.equal(
    JSON.stringify(parsed.message.payload).length,
    JSON.stringify(deepOk.payload).length,
  );
  assert.ok(MAX_DEPTH >= 256);
  // Many brackets side by side are not depth: 600 empty arrays and objects in one level pass.
  const wide = { ...valid, payload: { a: Array.from({ length: 600 }, (_, i) => i % 2 ? [] : {}) } };
  assert.ok(parseMessage(JSON.stringify(wide)).ok);
  // Just past the limit, with the brackets of both kinds, is refused.
  const mixed = `{"message_id":"m","user_id":"1","event_ts":1,"payload":${
    '{"a":['.repeat(MAX_DEPTH / 2)
  }1${"]}".repeat(MAX_DEPTH / 2)}}`;
  assert.match(poison(mixed), /nested deeper/);
});

Deno.test("schema: prototype-pollution keys are plain data and change nothing global", () => {
  const body =
    `{"message_id":"m","user_id":"1","event_ts":1,"payload":{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}},"__proto__":{"polluted":true}}`;
  const m = ok(body);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(m.payload), Object.prototype);
  // The payload re-serialises unchanged, keys and all.
  assert.equal(
    JSON.stringify(m.payload),
    `{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}`,
  );
});

Deno.test("schema: hostile ids: message_id and user_id over 256 bytes of UTF-8 are poison", () => {
  assert.equal(ok({ ...valid, message_id: "m".repeat(256) }).message_id.length, 256);
  assert.match(poison({ ...valid, message_id: "m".repeat(257) }), /message_id is longer than 256/);
  assert.match(poison({ ...valid, user_id: "u".repeat(250_000) }), /user_id is longer than 256/);
  // 86 three-byte characters are 258 bytes in 86 UTF-16 units: bytes count, not units.
  assert.match(poison({ ...valid, user_id: "€".repeat(86) }), /user_id is longer than 256 bytes/);
  assert.equal(ok({ ...valid, user_id: "€".repeat(85) }).user_id, "€".repeat(85));
  assert.equal(ok({ ...valid, user_id: "😀".repeat(64) }).user_id, "😀".repeat(64));
  assert.match(poison({ ...valid, user_id: "😀".repeat(65) }), /longer than 256/);
});

Deno.test("schema: hostile ids: a lone surrogate in message_id or user_id is poison", () => {
  assert.match(poison({ ...valid, user_id: "u\ud800" }), /user_id is not well-formed Unicode/);
  assert.match(poison({ ...valid, user_id: "\udc00x" }), /user_id is not well-formed/);
  assert.match(poison({ ...valid, message_id: "m-\ud83d" }), /message_id is not well-formed/);
  // The reason never quotes the id, so it stays a valid SQS attribute value.
  assert.doesNotMatch(poison({ ...valid, user_id: "u\ud800" }), /[\ud800-\udfff]/);
  assert.equal(ok({ ...valid, user_id: "u😀" }).user_id, "u😀");
});
