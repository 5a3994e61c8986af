import assert from "node:assert/strict";
import { parseMessage } from "../../src/domain/message_schema.ts";
import {
  buildOutputDocument,
  type Enrichment,
  outputDocumentJson,
} from "../../src/domain/output_document.ts";

/** A parsed input message from its JSON text. */
function message(body: string) {
  const parsed = parseMessage(body);
  assert.ok(parsed.ok, body);
  return parsed.message;
}

const PROFILE = JSON.parse(
  '{"user_id":"0042","city":"東京","risk_score":0.1,"big":1e21,"neg":-0,"tags":["a","\\u0000"],' +
    '"__proto__":{"x":1},"nested":{"deep":[1,{"y":null}]}}',
);

const MESSAGES = [
  '{"message_id":"m-1","user_id":123,"event_ts":1700000000,"payload":{}}',
  '{"message_id":"m-2","user_id":"00123","event_ts":"2024-02-29T23:59:59.999+05:30","payload":{"a":[1,2.5,-0,1e-7]}}',
  '{"message_id":"m\\"3\\\\","user_id":"ü\\ud83d\\ude00","event_ts":-1.5,"payload":{"__proto__":{"p":true},"s":"\\u2028\\u2029"}}',
  '{"message_id":"m-4","user_id":"1","event_ts":0,"payload":{"k":"\\ud800 lone"}}',
];

const ENRICHMENTS: Enrichment[] = [
  { status: "ok", profile: PROFILE },
  { status: "stale", profile: PROFILE },
  { status: "unknown_user" },
  { status: "ok", profile: {} },
];

Deno.test("output document: the JSON text is JSON.stringify(buildOutputDocument()) byte for byte", () => {
  for (const body of MESSAGES) {
    for (const enrichment of ENRICHMENTS) {
      const m = message(body);
      const expected = JSON.stringify(buildOutputDocument(m, enrichment));
      // Twice: the second takes the profile's JSON from the memo.
      assert.equal(outputDocumentJson(m, enrichment), expected, `${body} ${enrichment.status}`);
      assert.equal(outputDocumentJson(m, enrichment), expected, `${body} ${enrichment.status}`);
    }
  }
});

Deno.test("output document: the memo is per profile object, so another user's profile is not reused", () => {
  const m = message(MESSAGES[0]!);
  const a = outputDocumentJson(m, { status: "ok", profile: { user_id: "a" } });
  const b = outputDocumentJson(m, { status: "ok", profile: { user_id: "b" } });
  assert.match(a, /"user":\{"user_id":"a"\}/);
  assert.match(b, /"user":\{"user_id":"b"\}/);
});
