/** lab/judge.ts: the lab's verdict, one rule per row, and the DLQ count it reads. */
import assert from "node:assert/strict";
import { judge, type JudgeExpected, type JudgeObserved } from "../../lab/judge.ts";
import { countDlq } from "../../lab/summary.ts";

const EXPECTED: JudgeExpected = { poison: 10, table: false };

/** A clean run: every count as the lab wants it. */
const CLEAN: JudgeObserved = {
  earlier: [],
  lost: 0,
  duplicateSubmissions: 0,
  killedInFlight: 0,
  onWire: 0,
  wronglyRejected: 0,
  notValid: 0,
  poisonInDlq: 10,
  withoutAttributes: 0,
  foreign: 0,
  foreignIds: [],
  extraCopies: 0,
  leftInQueue: 0,
  followedRedirects: 0,
};

const ROWS: Array<{
  name: string;
  expected?: Partial<JudgeExpected>;
  observed: Partial<JudgeObserved>;
  problem: RegExp | undefined;
}> = [
  { name: "a clean run", observed: {}, problem: undefined },
  { name: "lost > 0", observed: { lost: 2 }, problem: /^2 valid messages were never accepted$/ },
  {
    name: "duplicates without kills",
    observed: { duplicateSubmissions: 1 },
    problem: /^1 duplicate submissions$/,
  },
  {
    name: "duplicates ≤ killed in flight",
    observed: { duplicateSubmissions: 3, killedInFlight: 3 },
    problem: undefined,
  },
  {
    name: "duplicates > killed in flight",
    observed: { duplicateSubmissions: 4, killedInFlight: 3 },
    problem: /^4 duplicate submissions \(more than the 3 in flight at kills\)$/,
  },
  {
    name: "--table: duplicates ≤ on the wire",
    expected: { table: true },
    observed: { duplicateSubmissions: 2, onWire: 2, killedInFlight: 0 },
    problem: undefined,
  },
  {
    name: "--table: duplicates at a kill, within the wire, are allowed",
    expected: { table: true },
    observed: {
      duplicateSubmissions: 2,
      onWire: 2,
      duplicateCauses: { atKill: 2, producerCopies: 0, redeliveries: 0 },
    },
    problem: undefined,
  },
  {
    name: "--table: a producer copy or a redelivery got through (within the wire's count or not)",
    expected: { table: true },
    observed: {
      duplicateSubmissions: 2,
      onWire: 5,
      duplicateCauses: { atKill: 0, producerCopies: 1, redeliveries: 1 },
    },
    problem:
      /^2 duplicate submissions the table should have stopped \(1 producer copies, 1 redeliveries of accepted messages\)$/,
  },
  {
    name: "no table: producer copies and redeliveries are the contrast, not a problem",
    observed: {
      duplicateSubmissions: 3,
      killedInFlight: 3,
      duplicateCauses: { atKill: 1, producerCopies: 1, redeliveries: 1 },
    },
    problem: undefined,
  },
  {
    name: "--table: the bound is the wire, not the messages in flight",
    expected: { table: true },
    observed: { duplicateSubmissions: 3, onWire: 2, killedInFlight: 50 },
    problem: /^3 duplicate submissions \(more than the 2 on the wire at kills\)$/,
  },
  {
    name: "valid messages rejected",
    observed: {
      wronglyRejected: 1,
      wrongSample: { messageId: "m-1", reason: "user", detail: "user differs" },
    },
    problem: /^1 valid messages were rejected by the validator \(e\.g\. m-1: user: user differs\)$/,
  },
  {
    name: "submissions that are not valid messages",
    observed: { notValid: 2, notValidSample: { reason: "not_json", detail: "body is not JSON" } },
    problem: /^2 submissions were not valid messages \(e\.g\. not_json: body is not JSON\)$/,
  },
  {
    name: "poison missing from the DLQ",
    observed: { poisonInDlq: 9 },
    problem: /^9 of 10 poison messages are in the DLQ with sluice_error\/sluice_reason$/,
  },
  {
    name: "poison redriven by SQS without the attributes",
    observed: { poisonInDlq: 8, withoutAttributes: 2 },
    problem: /^8 of 10 .*\(2 more without them: redriven by SQS/,
  },
  {
    name: "valid messages in the DLQ",
    observed: { foreign: 2, foreignIds: ["m-1", "m-2"] },
    problem:
      /^2 DLQ messages are not poison bodies \(e\.g\. m-1, m-2\): valid messages dead-lettered$/,
  },
  {
    name: "extra DLQ copies ≤ killed in flight",
    observed: { extraCopies: 1, killedInFlight: 1 },
    problem: undefined,
  },
  {
    name: "extra DLQ copies > killed in flight",
    observed: { extraCopies: 2, killedInFlight: 1 },
    problem: /^2 poison messages were dead-lettered more than once$/,
  },
  {
    name: "left in the queue",
    observed: { leftInQueue: 5 },
    problem: /^5 messages left in the queue$/,
  },
  {
    name: "followed redirects",
    observed: { followedRedirects: 1 },
    problem: /^1 requests followed a validator redirect$/,
  },
  {
    name: "RATE_LIMIT: the worst window at the limit is fine",
    observed: { rateLimit: { limit: 20, windowMs: 1000, worst: 20, key: "u1" } },
    problem: undefined,
  },
  {
    name: "RATE_LIMIT: a window over the limit",
    observed: { rateLimit: { limit: 20, windowMs: 1000, worst: 21, key: "u1" } },
    problem: /^user u1 had 21 submissions in one 1000 ms window \(RATE_LIMIT allows 20\)$/,
  },
  {
    name: "RATE_LIMIT_TABLE: the fleet's allowance is fine, beyond it a problem",
    observed: { rateLimit: { limit: 20, windowMs: 1000, worst: 24, key: "u1", allowed: 23 } },
    problem:
      /^user u1 had 24 submissions in one 1000 ms window \(RATE_LIMIT allows 20, 23 for the fleet\)$/,
  },
  {
    name: "RATE_LIMIT_TABLE: within the fleet's allowance",
    observed: { rateLimit: { limit: 20, windowMs: 1000, worst: 23, key: "u1", allowed: 23 } },
    problem: undefined,
  },
  {
    name: "an earlier problem fails the run",
    observed: { earlier: ["timed out after 120 s"] },
    problem: /^timed out after 120 s$/,
  },
];

for (const row of ROWS) {
  Deno.test(`lab judge: ${row.name}`, () => {
    const verdict = judge({ ...EXPECTED, ...row.expected }, { ...CLEAN, ...row.observed });
    if (row.problem === undefined) {
      assert.deepEqual(verdict, { ok: true, problems: [] });
    } else {
      assert.equal(verdict.ok, false);
      assert.equal(verdict.problems.length, 1, verdict.problems.join("; "));
      assert.match(verdict.problems[0]!, row.problem);
    }
  });
}

Deno.test("lab judge: earlier problems come first, then the counted ones in rule order", () => {
  const verdict = judge(EXPECTED, {
    ...CLEAN,
    earlier: ["SIGTERM phase: 1 messages never accepted"],
    lost: 1,
    leftInQueue: 1,
  });
  assert.deepEqual(verdict.problems, [
    "SIGTERM phase: 1 messages never accepted",
    "1 valid messages were never accepted",
    "1 messages left in the queue",
  ]);
});

Deno.test("lab judge: the DLQ count: attributes, extra copies, foreign bodies", () => {
  const tagged = { sluice_error: "poison", sluice_reason: "bad json" };
  const count = countDlq(["p1", "p2", "p3", "p1"], [
    { body: "p1", attributes: tagged },
    { body: "p1", attributes: {} },
    { body: "p2", attributes: {} },
    { body: JSON.stringify({ message_id: "m-7" }), attributes: {} },
  ]);
  assert.deepEqual(count, {
    poisonInDlq: 1,
    withoutAttributes: 1,
    extraCopies: 1,
    foreign: 1,
    foreignIds: ["m-7"],
    strandedOut: 0,
  });
});

Deno.test("lab judge: the DLQ count: a valid message stranded at a kill on every receive is counted apart, not as foreign", () => {
  const body = (id: string) => JSON.stringify({ message_id: id });
  const dlq = [
    { body: body("m-1"), attributes: {} },
    { body: body("m-2"), attributes: {} },
    { body: body("m-3"), attributes: { sluice_error: "VALIDATION", sluice_reason: "x" } },
  ];
  // m-1 and m-3 were in flight at enough kills; m-3 was dead-lettered by the worker all the same.
  const count = countDlq([], dlq, (id) => id === "m-1" || id === "m-3");
  assert.equal(count.strandedOut, 1);
  assert.equal(count.foreign, 2);
  assert.deepEqual(count.foreignIds, ["m-2", "m-3"]);
});
