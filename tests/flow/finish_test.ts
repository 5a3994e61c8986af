/** Finisher, alone: each action carried out once, the heartbeat ended, the outcome recorded. */
import assert from "node:assert/strict";
import { Finisher } from "../../src/flow/finish.ts";
import { newContext } from "../../src/flow/message_context.ts";
import { Settler } from "../../src/flow/settle.ts";
import type { Action } from "../../src/domain/outcome.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { QUIET_LOGGER } from "../support/quiet_logger.ts";
import { fakeSettler, oneMessage, type SettleKind } from "../support/pipeline_rig.ts";
import { untraced } from "../support/trace_kit.ts";

function finisher(settler = fakeSettler()) {
  const clock = new FakeClock({ start: 10_000 });
  const untracked: string[] = [];
  const outcomes: string[] = [];
  const metrics = createSluiceMetrics();
  const finish = new Finisher(
    { settler, heartbeat: { untrack: (m) => untracked.push(m.receiptHandle) } },
    { metrics, logger: QUIET_LOGGER, clock, onOutcome: (o) => outcomes.push(o) },
  );
  const ctx = newContext(
    oneMessage(2),
    clock.monotonic(),
    { messageId: "m-1", userId: "7" },
    untraced(),
  );
  clock.advance(3000);
  return { finish, ctx, untracked, outcomes, metrics, clock };
}

const rows: Array<[string, Exclude<Action, { kind: "hold" }>, SettleKind[], string]> = [
  ["a delete", { kind: "delete", outcome: "accepted" }, ["delete"], "accepted"],
  ["a dead-letter", { kind: "dead_letter", category: "VALIDATION", reason: "x" }, [
    "dead_letter",
  ], "dead_lettered"],
  [
    "a release",
    {
      kind: "release",
      category: "TRANSIENT",
      reason: "503",
      visibility: "backoff",
    },
    ["visibility"],
    "released",
  ],
  ["a re-queue", { kind: "requeue", reason: "shutdown" }, ["requeue"], "released"],
  ["letting a stale receipt go", { kind: "let_go", reason: "stale" }, [], "released"],
];
for (const [name, action, calls, outcome] of rows) {
  Deno.test(`finish: ${name} is one call, the heartbeat ended, the outcome recorded`, async () => {
    const heard: SettleKind[] = [];
    const f = finisher(fakeSettler((kind) => heard.push(kind)));
    await f.finish.carryOut(f.ctx, action);
    assert.deepEqual(heard, calls);
    assert.ok(f.untracked.length >= 1, "no longer extended");
    assert.deepEqual(f.outcomes, [outcome]);
    assert.equal(f.metrics.messages.get({ outcome }), 1);
  });
}

Deno.test("finish: a release's visibility grows with the receive count; now is 0", async () => {
  const args: unknown[][] = [];
  const f = finisher(fakeSettler((kind, a) => kind === "visibility" && args.push(a)));
  const release = (visibility: "backoff" | "now") =>
    f.finish.carryOut(f.ctx, { kind: "release", category: "TRANSIENT", reason: "r", visibility });
  await release("backoff");
  await release("now");
  assert.deepEqual(args.map((a) => a[1]), [20, 0], "second receive: 20 s; at once: 0");
});

Deno.test("finish: a copy the DLQ cannot take (over 1 MiB with its reason) is released for as long as SQS allows, and says so", async () => {
  const calls: Array<{ action: string; args: unknown[] }> = [];
  const sqs = {
    sendMessage: (...args: unknown[]) => {
      calls.push({ action: "SendMessage", args });
      return Promise.resolve({ messageId: "x" });
    },
    sendMessageCopy: () => Promise.reject(new Error("not asked")),
    deleteMessageBatch: () => Promise.resolve({ successful: ["0"], failed: [] }),
    changeMessageVisibilityBatch: (...args: unknown[]) => {
      calls.push({ action: "ChangeMessageVisibilityBatch", args });
      return Promise.resolve({ successful: ["0"], failed: [] });
    },
  };
  const settler = new Settler({
    sqs,
    queueUrl: "q",
    dlqUrl: () => "dlq",
    batchWaitMs: 1,
    clock: systemClock,
  });
  const f = finisher(settler);
  const big = { ...f.ctx.sqs, body: "x".repeat(1024 * 1024 - 10) };
  const ctx = { ...f.ctx, sqs: big };
  const lines: Array<Record<string, unknown>> = [];
  await new Finisher({ settler, heartbeat: { untrack: () => {} } }, {
    metrics: f.metrics,
    logger: {
      ...QUIET_LOGGER,
      enabled: () => true,
      warn: () => {},
      info: (msg, fields) => lines.push({ msg, ...fields }),
    },
    clock: f.clock,
  }).carryOut(ctx, { kind: "dead_letter", category: "VALIDATION", reason: "bad" });
  assert.deepEqual(calls.map((c) => c.action), ["ChangeMessageVisibilityBatch"], "never sent");
  const [, entries] = calls[0]!.args as [string, Array<{ visibilityTimeout: number }>];
  assert.ok(entries[0]!.visibilityTimeout > 43_000, "the longest SQS allows");
  assert.equal(f.metrics.messages.get({ outcome: "released" }), 1);
  assert.equal(lines[0]?.reason, "bad (DLQ send refused; released)");
});

Deno.test("finish: a re-queue SQS refuses falls back to a release at once", async () => {
  const heard: Array<[SettleKind, unknown[]]> = [];
  const settler = {
    ...fakeSettler((kind, args) => heard.push([kind, args])),
    requeue: () => Promise.reject(new Error("SQS said no")),
  };
  const f = finisher(settler);
  await f.finish.carryOut(f.ctx, { kind: "requeue", reason: "shutdown" });
  assert.deepEqual(heard.map(([kind, args]) => [kind, args[1]]), [["visibility", 0]]);
  assert.deepEqual(f.outcomes, ["released"]);
});
