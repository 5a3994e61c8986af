/**
 * The pipeline's calls through the idempotency port, with a fake gate: claim
 * before work, COMPLETED written alongside the delete, release on any other way out, no
 * submission once the lock is lost; and the heartbeat extends the lock.
 */
import assert from "node:assert/strict";
import { HttpError } from "../../src/lib/errors.ts";
import {
  deliverOnce,
  fakeSettler,
  oneMessage,
  type SettleKind,
  testPipeline,
} from "../support/pipeline_rig.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import type { ClaimResult, IdempotencyGate } from "../../src/flow/idempotency_gate.ts";
import type { Submission } from "../../src/adapters/validator_client.ts";
import { VisibilityHeartbeat } from "../../src/flow/visibility_heartbeat.ts";

/** A settler call as the events name it; a dead-letter with its category and reason. */
function settleEvent(kind: SettleKind, args: unknown[]): string {
  if (kind === "dead_letter") return `sqs dead-letter ${args[1]} ${args[2]}`;
  return `sqs ${kind === "visibility" ? "release" : kind}`;
}

function harness(
  gateAnswers: ClaimResult["kind"] | Array<ClaimResult["kind"]>,
  submit: () => Promise<Submission>,
  options: { loseLockAfterLookup?: boolean; receiveCount?: number; completed?: Promise<void> } = {},
) {
  const events: string[] = [];
  const lock = { messageId: "m-1", receiptHandle: "h-1", held: true };
  const answers = Array.isArray(gateAnswers) ? [...gateAnswers] : [gateAnswers];
  const gate: IdempotencyGate = {
    claim: (message, handle) => {
      events.push(`claim ${message.message_id} ${handle}`);
      const gateAnswer = answers.length > 1 ? answers.shift()! : answers[0]!;
      return Promise.resolve(
        gateAnswer === "proceed" ? { kind: "proceed", lock } : { kind: gateAnswer } as ClaimResult,
      );
    },
    complete: (l) => {
      events.push(`complete ${l.messageId}`);
      return (options.completed ?? Promise.resolve()).then(() => void events.push("completed"));
    },
    release: (l) => (events.push(`release ${l.messageId}`), Promise.resolve()),
    extend: () => {},
    maySubmit: (l) => l.held,
    lost: () => {},
  };
  const queue = deliverOnce(() => [oneMessage(options.receiveCount)]);
  const metrics = createSluiceMetrics();
  const pipeline = testPipeline({
    ports: {
      sqs: queue.sqs,
      settler: fakeSettler((kind, args) => events.push(settleEvent(kind, args))),
      lookup: () => {
        // The heartbeat found another owner while the profile was fetched.
        if (options.loseLockAfterLookup) lock.held = false;
        return Promise.resolve({ status: "ok", profile: { user_id: "7" } });
      },
      submit: () => (events.push("submit"), submit()),
      idempotency: gate,
    },
    // The retry budget runs on the fake clock: a retried 503 does not spin for real until 80 %
    // of the visibility has passed.
    services: { metrics, clock: new FakeClock() },
  });
  return {
    events,
    metrics,
    run: async () => {
      await pipeline.run(queue.intake.signal, new AbortController().signal);
      await pipeline.drain();
    },
  };
}

const accepted = () => Promise.resolve<Submission>({ accepted: true, status: 200 });

Deno.test("pipeline idempotency: idempotency port: claim, submit, COMPLETED begun before the SQS delete", async () => {
  const h = harness("proceed", accepted);
  await h.run();
  assert.deepEqual(h.events, [
    "claim m-1 h-1",
    "submit",
    "complete m-1",
    "sqs delete",
    "completed",
  ]);
});

Deno.test("pipeline idempotency: idempotency port: the delete does not wait for the COMPLETED write; the message ends after both", async () => {
  let write!: () => void;
  const completed = new Promise<void>((resolve) => write = resolve);
  const h = harness("proceed", () => Promise.resolve({ accepted: true, status: 200 }), {
    completed,
  });
  const running = h.run();
  for (let i = 0; i < 50 && !h.events.includes("sqs delete"); i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.deepEqual(h.events, ["claim m-1 h-1", "submit", "complete m-1", "sqs delete"]);
  write();
  await running;
  assert.equal(h.events.at(-1), "completed");
});

Deno.test("pipeline idempotency: idempotency port: a released message releases its claim too", async () => {
  const h = harness("proceed", () => Promise.reject(new HttpError("validator", 503, "down")));
  await h.run();
  assert.equal(h.events[0], "claim m-1 h-1");
  assert.deepEqual(h.events.slice(-2), ["sqs release", "release m-1"]);
  assert.ok(!h.events.includes("complete m-1"));
});

Deno.test("pipeline idempotency: idempotency port: a lost lock is never submitted; the copy claims again and ends as the duplicate it is", async () => {
  const h = harness(["proceed", "duplicate"], accepted, { loseLockAfterLookup: true });
  await h.run();
  assert.deepEqual(h.events, ["claim m-1 h-1", "release m-1", "claim m-1 h-1", "sqs delete"]);
  assert.equal(h.metrics.messages.get({ outcome: "duplicate" }), 1);
});

Deno.test("pipeline idempotency: idempotency port: a lost lock on the last receive is never handed to the redrive policy", async () => {
  const h = harness(["proceed", "duplicate"], accepted, {
    loseLockAfterLookup: true,
    receiveCount: 3,
  });
  await h.run();
  assert.deepEqual(h.events, ["claim m-1 h-1", "release m-1", "claim m-1 h-1", "sqs delete"]);
  assert.ok(!h.events.includes("sqs release"));
});

Deno.test("pipeline idempotency: idempotency port: accepted elsewhere is deleted as a duplicate, unsubmitted", async () => {
  const h = harness("duplicate", accepted);
  await h.run();
  assert.deepEqual(h.events, ["claim m-1 h-1", "sqs delete"]);
  assert.equal(h.metrics.messages.get({ outcome: "duplicate" }), 1);
});

Deno.test("pipeline idempotency: idempotency port: a reused message_id is dead-lettered as VALIDATION with the reason", async () => {
  const h = harness("mismatch", accepted);
  await h.run();
  assert.deepEqual(h.events, [
    "claim m-1 h-1",
    "sqs dead-letter VALIDATION message_id reused with another payload",
  ]);
});

Deno.test("pipeline idempotency: heartbeat: each visibility extension also extends the message's lock", () => {
  const clock = new FakeClock({ start: 0 });
  const extended: Array<[string, number]> = [];
  const heartbeat = new VisibilityHeartbeat({
    extend: () => Promise.resolve("done"),
    visibilityTimeoutSeconds: 30,
    alsoExtend: (handle, seconds) => extended.push([handle, seconds]),
    clock,
  });
  heartbeat.track({ receiptHandle: "h-1" }, 0, 30);
  clock.set(10_000);
  assert.equal(heartbeat.beat(), 0);
  clock.set(16_000);
  assert.equal(heartbeat.beat(), 1);
  assert.deepEqual(extended, [["h-1", 30]]);
});
