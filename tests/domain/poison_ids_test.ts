import assert from "node:assert/strict";
import { poisonIds } from "../../src/domain/poison_ids.ts";

Deno.test("poisonIds: whatever ids a poison body still carries, row by row", () => {
  const rows: Array<[string, string, ReturnType<typeof poisonIds>]> = [
    ["bad event_ts", '{"message_id":"m1","user_id":"u1","event_ts":"soon"}', {
      messageId: "m1",
      userId: "u1",
    }],
    ["numeric user", '{"message_id":"m2","user_id":42}', { messageId: "m2", userId: "42" }],
    ["negative user still logged", '{"message_id":"m3","user_id":-1}', {
      messageId: "m3",
      userId: "-1",
    }],
    ["user of the wrong type", '{"message_id":"m4","user_id":{"a":1}}', { messageId: "m4" }],
    ["empty message id", '{"message_id":"","user_id":"u5"}', { userId: "u5" }],
    ["not JSON", "{nope", {}],
    ["an array", '["m1"]', {}],
    ["null", "null", {}],
    ["too deep", "[".repeat(600) + "]".repeat(600), {}],
  ];
  for (const [name, body, want] of rows) assert.deepEqual(poisonIds(body), want, name);
  const long = poisonIds(JSON.stringify({ message_id: "x".repeat(5000) }));
  assert.equal(long.messageId?.length, 200, "long ids are cut for the log line");
});
