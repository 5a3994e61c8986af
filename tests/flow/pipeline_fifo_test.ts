/**
 * The pipeline on a FIFO queue, with fakes: a group's messages submitted one at a time in
 * delivery order, groups side by side, and a message that goes back taking the later ones of
 * its group back with it, unsubmitted.
 */
import assert from "node:assert/strict";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";
import type { Submission } from "../../src/adapters/validator_client.ts";
import { HttpError } from "../../src/lib/errors.ts";
import { deliverOnce, fakeSettler, testPipeline } from "../support/pipeline_rig.ts";

function fifoMessage(group: string, id: string, receiveCount = 1): SqsMessage {
  return {
    messageId: `sqs-${id}`,
    receiptHandle: `h-${id}`,
    body: JSON.stringify({ message_id: id, user_id: "7", event_ts: 1, payload: {} }),
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: "0",
      MessageGroupId: group,
    },
    messageAttributes: {},
  };
}

async function run(messages: SqsMessage[], submit: (id: string) => Promise<Submission>) {
  const events: string[] = [];
  const queue = deliverOnce(() => messages);
  const pipeline = testPipeline({
    intake: { fifo: true },
    ports: {
      sqs: queue.sqs,
      settler: fakeSettler((kind, args) => {
        const handle = typeof args[0] === "string"
          ? args[0]
          : (args[0] as SqsMessage).receiptHandle;
        events.push(`${kind} ${handle}${kind === "visibility" ? ` ${args[1]}` : ""}`);
      }),
      submit: (document) => {
        const id = (JSON.parse(document) as { message_id: string }).message_id;
        events.push(`submit ${id}`);
        return submit(id);
      },
    },
  });
  await pipeline.run(queue.intake.signal, new AbortController().signal);
  await pipeline.drain();
  return events;
}

const accepted = () => Promise.resolve<Submission>({ accepted: true, status: 200 });

Deno.test("pipeline fifo: a group's messages are submitted one at a time, each after the one before is deleted", async () => {
  const events = await run(
    [fifoMessage("g", "a1"), fifoMessage("g", "a2"), fifoMessage("g", "a3")],
    accepted,
  );
  assert.deepEqual(events, [
    "submit a1",
    "delete h-a1",
    "submit a2",
    "delete h-a2",
    "submit a3",
    "delete h-a3",
  ]);
});

Deno.test("pipeline fifo: a released message sends the later ones of its group back unsubmitted; another group goes on", async () => {
  const events = await run(
    [
      fifoMessage("g", "a1"),
      fifoMessage("g", "a2"),
      fifoMessage("g", "a3"),
      fifoMessage("h", "b1"),
    ],
    (id) => id === "a1" ? Promise.reject(new HttpError("validator", 503, "down")) : accepted(),
  );
  const mine = events.filter((e) => !e.includes("b1"));
  assert.equal(mine.filter((e) => e === "submit a1").length > 0, true);
  assert.deepEqual(mine.filter((e) => !e.startsWith("submit")), [
    "visibility h-a1 10",
    "visibility h-a2 0",
    "visibility h-a3 0",
  ], "a1 released with backoff first, then the rest of its group at once");
  assert.ok(!events.includes("submit a2") && !events.includes("submit a3"), "never submitted");
  assert.ok(events.includes("delete h-b1"), "the other group was not held up");
});

Deno.test("pipeline fifo: on the last allowed receive the later messages are re-queued, not released", async () => {
  const events = await run(
    [fifoMessage("g", "a1", 2), fifoMessage("g", "a2", 3)],
    (id) => id === "a1" ? Promise.reject(new HttpError("validator", 503, "down")) : accepted(),
  );
  assert.deepEqual(events.filter((e) => !e.startsWith("submit")), [
    "visibility h-a1 20",
    "requeue h-a2",
  ]);
});
