/**
 * The outcome log lines (docs/outcomes.md): at info only outcomes other than
 * accepted and duplicate, each with whatever ids parsed and the SQS message id;
 * at debug also accepted and duplicate lines and the outgoing document.
 */
import assert from "node:assert/strict";
import { createLogger, type LogLevel } from "../../src/lib/logger.ts";
import { deliverOnce, testPipeline } from "../support/pipeline_rig.ts";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";
import { FakeClock } from "../support/fake_clock.ts";

async function runBodies(bodies: string[], level: LogLevel) {
  const lines: Array<Record<string, unknown>> = [];
  const outcomes: Array<[string, number]> = [];
  const messages: SqsMessage[] = bodies.map((body, i) => ({
    messageId: `sqs-${i}`,
    receiptHandle: `h-${i}`,
    body,
    attributes: { ApproximateReceiveCount: "2", SentTimestamp: "0" },
    messageAttributes: {},
  }));
  const queue = deliverOnce(() => messages);
  const clock = new FakeClock({ start: 5_000 });
  const pipeline = testPipeline({
    ports: {
      sqs: queue.sqs,
      lookup: (userId) => Promise.resolve({ status: "ok", profile: { user_id: userId } }),
      submit: () => {
        clock.advance(7);
        return Promise.resolve({ accepted: true, status: 200 });
      },
    },
    services: {
      clock,
      logger: createLogger({ level, write: (l) => lines.push(JSON.parse(l)), clock }),
      onOutcome: (outcome, ms) => outcomes.push([outcome, ms]),
    },
  });
  await pipeline.run(queue.intake.signal, new AbortController().signal);
  await pipeline.drain();
  return { lines, outcomes };
}

const good = (id: string) =>
  JSON.stringify({ message_id: id, user_id: "u1", event_ts: 1, payload: {} });
const BODIES = [
  good("m-1"),
  good("m-1"), // a duplicate of the first
  JSON.stringify({ message_id: "m-2", user_id: "u2", event_ts: "tomorrow", payload: {} }),
  "{not json",
];

Deno.test("pipeline logging: at info: one line per outcome other than accepted and duplicate, with the ids that parsed", async () => {
  const { lines, outcomes } = await runBodies(BODIES, "info");
  const outcomeLines = lines.filter((l) => l.msg === "message");
  assert.equal(outcomeLines.length, 2, JSON.stringify(lines));
  const poison = outcomeLines.find((l) => l.sqs_message_id === "sqs-2")!;
  assert.deepEqual(
    { ...poison, ts: undefined, duration_ms: undefined, trace_id: undefined, span_id: undefined },
    {
      ts: undefined,
      level: "warn",
      msg: "message",
      message_id: "m-2",
      user_id: "u2",
      outcome: "dead_lettered",
      category: "VALIDATION",
      reason: poison.reason,
      receive_count: 2,
      duration_ms: undefined,
      sqs_message_id: "sqs-2",
      trace_id: undefined,
      span_id: undefined,
    },
  );
  assert.equal(typeof poison.duration_ms, "number");
  assert.match(String(poison.trace_id), /^[0-9a-f]{32}$/);
  assert.match(String(poison.span_id), /^[0-9a-f]{16}$/);
  assert.match(String(poison.reason), /event_ts/);
  const garbage = outcomeLines.find((l) => l.sqs_message_id === "sqs-3")!;
  assert.equal(garbage.message_id, null, "nothing parsed, nothing invented");
  assert.equal(garbage.outcome, "dead_lettered");
  assert.ok(!lines.some((l) => l.msg === "outgoing document"));
  assert.deepEqual(
    outcomes.map(([o]) => o).sort(),
    ["accepted", "dead_lettered", "dead_lettered", "duplicate"],
    "the summary is told every outcome",
  );
});

Deno.test("pipeline logging: at debug: also accepted and duplicate lines, and the outgoing document", async () => {
  const { lines } = await runBodies(BODIES, "debug");
  const outcomeLines = lines.filter((l) => l.msg === "message");
  assert.equal(outcomeLines.length, 4);
  const accepted = outcomeLines.find((l) => l.outcome === "accepted")!;
  assert.equal(accepted.level, "debug");
  assert.equal(accepted.message_id, "m-1");
  assert.equal(accepted.user_id, "u1");
  assert.ok(outcomeLines.some((l) => l.outcome === "duplicate" && l.level === "debug"));
  const documents = lines.filter((l) => l.msg === "outgoing document");
  assert.equal(documents.length, 1, "one submission, one document");
  assert.equal((documents[0]!.document as { message_id: string }).message_id, "m-1");
});
