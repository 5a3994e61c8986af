/** Settler.requeue: a fresh copy first, then the delete of the original. */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { Settler } from "../../src/flow/settle.ts";
import { SqsError } from "../../src/lib/errors.ts";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";
import { FakeClock } from "../support/fake_clock.ts";

function fakeSqs(sendFails = 0) {
  const calls: Array<{ action: string; args: unknown[] }> = [];
  let failures = sendFails;
  const sqs = {
    sendMessage: () => Promise.reject(new Error("not used")),
    sendMessageCopy: (...args: unknown[]) => {
      calls.push({ action: "SendMessage", args });
      if (failures-- > 0) {
        return Promise.reject(
          new SqsError("SendMessage", "InternalError", 500, "try again", { retriable: true }),
        );
      }
      return Promise.resolve({ messageId: "copy-1" });
    },
    deleteMessageBatch: (_url: string, entries: Array<{ id: string }>) => {
      calls.push({ action: "DeleteMessageBatch", args: [entries] });
      return Promise.resolve({ successful: entries.map((e) => e.id), failed: [] });
    },
    changeMessageVisibilityBatch: () => Promise.reject(new Error("not used")),
  };
  return { sqs, calls };
}

const message: Pick<SqsMessage, "receiptHandle" | "body" | "messageAttributes"> = {
  receiptHandle: "h-1",
  body: '{"message_id":"m-1"}',
  messageAttributes: {
    trace: { DataType: "String", StringValue: "t-1" },
    priority: { DataType: "Number", StringValue: "7" },
    blob: { DataType: "Binary", BinaryValue: "AAE=" },
  },
};

Deno.test("settle requeue: requeue sends the same body and typed attributes to the main queue, then deletes", async () => {
  const { sqs, calls } = fakeSqs();
  const settler = new Settler({
    sqs,
    queueUrl: "http://sqs.local/000/q",
    dlqUrl: () => undefined,
    clock: systemClock,
  });
  assert.equal(await settler.requeue(message), "done");
  assert.deepEqual(calls.map((c) => c.action), ["SendMessage", "DeleteMessageBatch"]);
  assert.deepEqual(calls[0]!.args.slice(0, 3), [
    "http://sqs.local/000/q",
    message.body,
    message.messageAttributes,
  ]);
  assert.deepEqual(calls[1]!.args[0], [{ id: "0", receiptHandle: "h-1" }]);
});

Deno.test("settle requeue: requeue retries the copy; with no copy sent the original is not deleted", async () => {
  const noSleep = () => Promise.resolve();
  const retried = fakeSqs(2);
  const settler = new Settler({
    sqs: retried.sqs,
    queueUrl: "q",
    dlqUrl: () => undefined,
    clock: { ...systemClock, sleep: noSleep },
  });
  assert.equal(await settler.requeue(message), "done");
  assert.deepEqual(retried.calls.map((c) => c.action), [
    "SendMessage",
    "SendMessage",
    "SendMessage",
    "DeleteMessageBatch",
  ]);

  const clock = new FakeClock({ start: 0 });
  const failing = fakeSqs(1000);
  const giveUp = new Settler({
    sqs: failing.sqs,
    queueUrl: "q",
    dlqUrl: () => undefined,
    // The retry budget on the fake clock; the delete batch's timer on the real one.
    clock: { ...clock, timer: systemClock.timer, sleep: (ms: number) => clock.sleep(ms) },
  });
  await assert.rejects(giveUp.requeue(message, 5000));
  assert.ok(!failing.calls.some((c) => c.action === "DeleteMessageBatch"), "original kept");
});
