import assert from "node:assert/strict";
import type { DlqFilter } from "../../src/cli/cli_args.ts";
import {
  batchSizeFor,
  categoryOf,
  paceDelayMs,
  redriveAttributes,
  sameQueue,
  selects,
} from "../../src/cli/dlq_select.ts";
import { parseRedrivePolicy } from "../../src/cli/dlq_session.ts";

const NOW = 1_700_000_000_000;
const s = (v: string) => ({ DataType: "String", StringValue: v });
const message = (error: string | undefined, reason: string | undefined, ageSeconds: number) => ({
  messageAttributes: {
    ...(error ? { sluice_error: s(error) } : {}),
    ...(reason ? { sluice_reason: s(reason) } : {}),
  },
  attributes: { SentTimestamp: String(NOW - ageSeconds * 1000) },
});
const filter = (f: Partial<DlqFilter>): DlqFilter => ({
  categories: [],
  reasonMatch: undefined,
  minAgeSeconds: undefined,
  ...f,
});

const rows: Array<[string, Partial<DlqFilter>, ReturnType<typeof message>, boolean]> = [
  ["no filter selects all", {}, message(undefined, undefined, 0), true],
  ["category match", { categories: ["VALIDATION"] }, message("VALIDATION", "x", 0), true],
  ["category mismatch", { categories: ["VALIDATION"] }, message("REJECTED", "x", 0), false],
  ["NONE selects policy-moved", { categories: ["NONE"] }, message(undefined, undefined, 0), true],
  ["reason match", { reasonMatch: /json/ }, message("VALIDATION", "invalid json", 0), true],
  ["reason mismatch", { reasonMatch: /json/ }, message("VALIDATION", "missing user_id", 0), false],
  ["old enough", { minAgeSeconds: 60 }, message("VALIDATION", "x", 61), true],
  ["too young", { minAgeSeconds: 60 }, message("VALIDATION", "x", 59), false],
];
for (const [name, f, m, expected] of rows) {
  Deno.test(`dlq select: selects: ${name}`, () =>
    assert.equal(selects(filter(f), m, NOW), expected));
}

Deno.test("dlq select: categoryOf: sluice_error, or NONE", () => {
  assert.equal(categoryOf(message("REJECTED", undefined, 0)), "REJECTED");
  assert.equal(categoryOf(message(undefined, undefined, 0)), "NONE");
});

Deno.test("dlq select: redriveAttributes: producer attributes kept, sluice_* renamed, redriven_at added", () => {
  const out = redriveAttributes({
    trace_id: s("t-1"),
    priority: { DataType: "Number", StringValue: "3" },
    sluice_error: s("VALIDATION"),
    sluice_reason: s("invalid json"),
  }, NOW);
  assert.deepEqual(out, {
    trace_id: s("t-1"),
    priority: { DataType: "Number", StringValue: "3" },
    sluice_redriven_at: s(new Date(NOW).toISOString()),
    sluice_last_error: s("VALIDATION"),
    sluice_last_reason: s("invalid json"),
  });
});

Deno.test("dlq select: redriveAttributes: leaves room for the worker's two attributes", () => {
  const many = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`a${i}`, s("v")]));
  const out = redriveAttributes({ ...many, sluice_error: s("X"), sluice_reason: s("y") }, NOW);
  assert.equal(Object.keys(out).length, 8);
  assert.ok("sluice_redriven_at" in out && !("sluice_error" in out));
  const full = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`a${i}`, s("v")]));
  assert.equal(Object.keys(redriveAttributes(full, NOW)).length, 10, "producer's are never cut");
});

Deno.test("dlq select: sameQueue: the same account and name under any host form", () => {
  const a = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders";
  assert.ok(sameQueue(a, `${a}/`));
  assert.ok(sameQueue(a, "https://eu-west-1.queue.amazonaws.com/123456789012/orders"));
  assert.ok(!sameQueue(a, "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-dlq"));
});

Deno.test("dlq select: paceDelayMs: count / rate seconds, ±20% jitter; batchSizeFor follows the rate", () => {
  assert.equal(paceDelayMs(10, 50, 0.5), 200);
  assert.equal(paceDelayMs(10, 50, 0), 160);
  assert.ok(paceDelayMs(10, 50, 0.999) < 240);
  assert.deepEqual([undefined, 0.5, 3, 50].map(batchSizeFor), [10, 1, 3, 10]);
});

Deno.test("dlq select: parseRedrivePolicy: name, account and maxReceiveCount; undefined when unreadable", () => {
  assert.deepEqual(
    parseRedrivePolicy(
      '{"deadLetterTargetArn":"arn:aws:sqs:eu-west-1:123456789012:orders-dlq","maxReceiveCount":5}',
    ),
    { name: "orders-dlq", account: "123456789012", maxReceiveCount: 5 },
  );
  assert.equal(parseRedrivePolicy("not json"), undefined);
  assert.equal(parseRedrivePolicy(undefined), undefined);
  assert.equal(parseRedrivePolicy('{"maxReceiveCount":5}'), undefined);
});
