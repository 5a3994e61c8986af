import assert from "node:assert/strict";
import type { DlqFilter } from "../../src/cli/cli_args.ts";
import {
  batchSizeFor,
  byteBatches,
  categoryOf,
  movedByRun,
  paceDelayMs,
  parseQueueArn,
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

const STAMP = { nowMs: NOW, runId: "run-1" };
const copy = (messageAttributes: Record<string, ReturnType<typeof s>>, body = "{}") => ({
  body,
  messageAttributes,
});

Deno.test("dlq select: redriveAttributes: producer attributes kept, sluice_* renamed, run and time added", () => {
  const out = redriveAttributes(
    copy({
      trace_id: s("t-1"),
      priority: { DataType: "Number", StringValue: "3" },
      sluice_error: s("VALIDATION"),
      sluice_reason: s("invalid json"),
      sluice_last_error: s("OLDER"),
    }),
    STAMP,
  );
  assert.deepEqual(out, {
    trace_id: s("t-1"),
    priority: { DataType: "Number", StringValue: "3" },
    sluice_redrive_run: s("run-1"),
    sluice_redriven_at: s(new Date(NOW).toISOString()),
    sluice_last_error: s("VALIDATION"),
    sluice_last_reason: s("invalid json"),
  });
});

Deno.test("dlq select: redriveAttributes: leaves room for the worker's two attributes, the run id first", () => {
  const many = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`a${i}`, s("v")]));
  const out = redriveAttributes(
    copy({ ...many, sluice_error: s("X"), sluice_reason: s("y") }),
    STAMP,
  );
  assert.equal(Object.keys(out).length, 8);
  assert.ok("sluice_redrive_run" in out && !("sluice_error" in out));
  const full = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`a${i}`, s("v")]));
  assert.equal(
    Object.keys(redriveAttributes(copy(full), STAMP)).length,
    10,
    "producer's are never cut",
  );
});

Deno.test("dlq select: redriveAttributes: a copy near 1 MiB gets only what fits", () => {
  const body = "b".repeat(1024 * 1024 - 40);
  const out = redriveAttributes(copy({ sluice_error: s("VALIDATION") }, body), STAMP);
  assert.deepEqual(Object.keys(out), ["sluice_redrive_run"]);
  assert.deepEqual(redriveAttributes(copy({}, "b".repeat(1024 * 1024)), STAMP), {});
});

Deno.test("dlq select: movedByRun: the copies this run sent carry its id", () => {
  assert.ok(movedByRun(copy({ sluice_redrive_run: s("run-1") }), "run-1"));
  assert.ok(!movedByRun(copy({ sluice_redrive_run: s("run-0") }), "run-1"));
  assert.ok(!movedByRun(copy({}), "run-1"));
});

const KB = 1024;
const entry = (bytes: number) => ({ body: "x".repeat(bytes) });
const batchRows: Array<[string, number[], number[]]> = [
  ["ten small ones are one request", Array(10).fill(1), [10]],
  ["eleven small ones are two", Array(11).fill(1), [10, 1]],
  ["ten of 200 KB are five of two", Array(10).fill(200 * KB), [5, 5]],
  ["exactly 1 MiB fits", [512 * KB, 512 * KB], [2]],
  ["one byte more does not", [512 * KB, 512 * KB + 1], [1, 1]],
  ["a large one between small ones", [1, 1024 * KB - 1, 2, 1], [2, 2]],
  ["none", [], []],
];
for (const [name, sizes, expected] of batchRows) {
  Deno.test(`dlq select: byteBatches: ${name}`, () => {
    assert.deepEqual(byteBatches(sizes.map(entry)).map((b) => b.length), expected);
  });
}

Deno.test("dlq select: byteBatches: attribute bytes count too", () => {
  const attrs = { big: s("a".repeat(100 * KB)) };
  const entries = Array.from(
    { length: 10 },
    () => ({ body: "x".repeat(10 * KB), messageAttributes: attrs }),
  );
  assert.deepEqual(byteBatches(entries).map((b) => b.length), [9, 1]);
});

const arnRows: Array<[string, ReturnType<typeof parseQueueArn>]> = [
  ["arn:aws:sqs:eu-west-1:123456789012:orders", { account: "123456789012", name: "orders" }],
  ["arn:aws-cn:sqs:cn-north-1:123456789012:o.fifo", { account: "123456789012", name: "o.fifo" }],
  ["arn:aws:sns:eu-west-1:123456789012:topic", undefined],
  ["arn:aws:sqs:eu-west-1::orders", undefined],
  ["arn:aws:sqs:eu-west-1:123456789012:orders:extra", undefined],
  ["orders", undefined],
];
for (const [arn, expected] of arnRows) {
  Deno.test(`dlq select: parseQueueArn: ${arn}`, () =>
    assert.deepEqual(parseQueueArn(arn), expected));
}

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
  assert.deepEqual([0.5, 3, 10, 50].map(batchSizeFor), [1, 3, 10, 10]);
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
