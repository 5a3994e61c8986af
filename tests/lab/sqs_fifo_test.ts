/**
 * FIFO queues behind the SQS proxy, as real SQS serves them: a receive takes several messages of
 * one group in order, none more of a group while any is in flight, ReceiveRequestAttemptId
 * replays, deduplication, the redrive policy, stale handles. On the proxy's fake clock.
 */
import assert from "node:assert/strict";
import { startFauxqs } from "../../lab/local_server.ts";
import { createSqsAdmin } from "../../lab/sqs_admin.ts";
import { startSqsProxy } from "../../lab/sqs_proxy.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { fifoQueues, type LocalSqs, sqsPost as post, startLocalSqs } from "../support/local_sqs.ts";

const Q = "work.fifo";

async function withFifo(fn: (sqs: LocalSqs, clock: FakeClock) => Promise<void>) {
  const clock = new FakeClock({ start: 1_000_000 });
  const sqs = await startLocalSqs({
    now: clock.now,
    queues: fifoQueues(Q, 2),
  });
  try {
    await fn(sqs, clock);
  } finally {
    await sqs.close();
  }
}

interface Received {
  Body: string;
  ReceiptHandle: string;
  Attributes?: Record<string, string>;
}

async function receive(sqs: LocalSqs, more: Record<string, unknown> = {}, queue = Q) {
  const got = await post(sqs.url, "ReceiveMessage", {
    QueueUrl: sqs.queueUrl(queue),
    MaxNumberOfMessages: 10,
    MessageSystemAttributeNames: ["All"],
    ...more,
  });
  assert.equal(got.status, 200, got.text);
  return (got.json.Messages ?? []) as Received[];
}

/** Sends `bodies` in order, each "<group>-<n>" to its group. */
async function sendAll(sqs: LocalSqs, bodies: string[]) {
  for (const body of bodies) await sqs.send(Q, body, {}, { groupId: body.split("-")[0]! });
}

const bodies = (messages: Received[]) => messages.map((m) => m.Body);

Deno.test("sqs fifo: a receive takes up to the asked number of one group, in order; none more of it while any is in flight", async () => {
  await withFifo(async (sqs, clock) => {
    await sendAll(sqs, ["a-1", "b-1", "a-2", "a-3", "b-2", "c-1"]);
    assert.deepEqual(bodies(await receive(sqs, { MaxNumberOfMessages: 2 })), ["a-1", "a-2"]);
    const next = await receive(sqs);
    assert.deepEqual(bodies(next), ["b-1", "b-2"], "a is in flight: the next group");
    assert.equal(next[0]?.Attributes?.MessageGroupId, "b");
    assert.match(next[0]?.Attributes?.SequenceNumber ?? "", /^\d{20}$/);
    assert.deepEqual(bodies(await receive(sqs)), ["c-1"]);
    assert.deepEqual(await receive(sqs), [], "a-3 waits for a-1 and a-2");
    clock.advance(31_000);
    const again = await receive(sqs);
    assert.deepEqual(bodies(again), ["a-1", "a-2", "a-3"], "a's order survives the redelivery");
    assert.equal(again[0]?.Attributes?.ApproximateReceiveCount, "2");
    const counts = await post(sqs.url, "GetQueueAttributes", {
      QueueUrl: sqs.queueUrl(Q),
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    });
    assert.deepEqual(counts.json.Attributes, {
      ApproximateNumberOfMessages: "3",
      ApproximateNumberOfMessagesNotVisible: "3",
    });
  });
});

Deno.test("sqs fifo: a group goes on once its in-flight messages are deleted", async () => {
  await withFifo(async (sqs) => {
    await sendAll(sqs, ["a-1", "a-2", "a-3"]);
    const [first] = await receive(sqs, { MaxNumberOfMessages: 1 });
    assert.equal(first?.Body, "a-1");
    assert.deepEqual(await receive(sqs), []);
    await post(sqs.url, "DeleteMessage", {
      QueueUrl: sqs.queueUrl(Q),
      ReceiptHandle: first!.ReceiptHandle,
    });
    assert.deepEqual(bodies(await receive(sqs)), ["a-2", "a-3"]);
  });
});

Deno.test("sqs fifo: a receive retried with its ReceiveRequestAttemptId answers the same messages and handles", async () => {
  await withFifo(async (sqs, clock) => {
    await sendAll(sqs, ["a-1", "a-2", "b-1"]);
    const first = await receive(sqs, { ReceiveRequestAttemptId: "try-1" });
    assert.deepEqual(bodies(first), ["a-1", "a-2"]);
    clock.advance(20_000);
    const retried = await receive(sqs, { ReceiveRequestAttemptId: "try-1" });
    assert.deepEqual(retried, first, "the lost answer, again");
    // The retry restarted their visibility: 40 s after the first receive, a is still in flight.
    clock.advance(20_000);
    assert.deepEqual(bodies(await receive(sqs)), ["b-1"]);
    await post(sqs.url, "DeleteMessage", {
      QueueUrl: sqs.queueUrl(Q),
      ReceiptHandle: first[0]!.ReceiptHandle,
    });
    assert.deepEqual(
      await receive(sqs, { ReceiveRequestAttemptId: "try-1" }),
      [],
      "after a delete the attempt id is a new receive (a-2 and b-1 are in flight)",
    );
  });
});

Deno.test("sqs fifo: an attempt id older than 5 minutes is a new receive", async () => {
  await withFifo(async (sqs, clock) => {
    await sendAll(sqs, ["c-1"]);
    const [first] = await receive(sqs, { ReceiveRequestAttemptId: "try" });
    clock.advance(5 * 60_000 + 1);
    const [late] = await receive(sqs, { ReceiveRequestAttemptId: "try" });
    assert.equal(late?.Body, "c-1");
    assert.notEqual(late?.ReceiptHandle, first?.ReceiptHandle);
    assert.equal(late?.Attributes?.ApproximateReceiveCount, "2");
  });
});

Deno.test("sqs fifo: the redrive policy moves a message to the FIFO DLQ with its group; the group goes on", async () => {
  await withFifo(async (sqs, clock) => {
    await sendAll(sqs, ["c-1", "c-2"]);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(bodies(await receive(sqs, { MaxNumberOfMessages: 1 })), ["c-1"]);
      clock.advance(31_000);
    }
    assert.deepEqual(bodies(await receive(sqs)), ["c-2"], "c-1 moved on its third receive");
    const [moved] = await receive(sqs, {}, "dlq.fifo");
    assert.equal(moved?.Body, "c-1");
    assert.equal(moved?.Attributes?.MessageGroupId, "c");
    assert.equal(
      moved?.Attributes?.DeadLetterQueueSourceArn,
      "arn:aws:sqs:us-east-1:000000000000:work.fifo",
    );
    assert.deepEqual((await sqs.messages("dlq.fifo")).map((m) => m.body), ["c-1"]);
  });
});

Deno.test("sqs fifo: a deduplication id within 5 minutes stores one copy; SQS's send rules", async () => {
  await withFifo(async (sqs, clock) => {
    const send = (body: Record<string, unknown>, queue = Q) =>
      post(sqs.url, "SendMessage", { QueueUrl: sqs.queueUrl(queue), MessageBody: "m", ...body });
    const first = await send({ MessageGroupId: "g", MessageDeduplicationId: "d" });
    const again = await send({ MessageGroupId: "g", MessageDeduplicationId: "d" });
    assert.equal(again.json.MessageId, first.json.MessageId);
    assert.equal(again.json.SequenceNumber, first.json.SequenceNumber);
    assert.equal((await sqs.messages(Q)).length, 1);
    clock.advance(5 * 60_000);
    const later = await send({ MessageGroupId: "g", MessageDeduplicationId: "d" });
    assert.notEqual(later.json.MessageId, first.json.MessageId);
    assert.equal(
      (await send({ MessageDeduplicationId: "x" })).json.__type,
      "com.amazonaws.sqs#MissingParameter",
    );
    const noDedup = await send({ MessageGroupId: "g" });
    assert.match(
      noDedup.json.message,
      /ContentBasedDeduplication enabled or MessageDeduplicationId/,
    );
    const delayed = await send({
      MessageGroupId: "g",
      MessageDeduplicationId: "y",
      DelaySeconds: 5,
    });
    assert.equal(delayed.json.__type, "com.amazonaws.sqs#InvalidParameterValue");
    await sqs.createQueue("cbd.fifo", { ContentBasedDeduplication: "true" });
    const a = await send({ MessageGroupId: "g" }, "cbd.fifo");
    const b = await send({ MessageGroupId: "h" }, "cbd.fifo");
    assert.equal(b.json.MessageId, a.json.MessageId, "the body's hash is the deduplication id");
  });
});

Deno.test("sqs fifo: stale and expired receipt handles, the 12-hour limit, batch entries one by one", async () => {
  await withFifo(async (sqs, clock) => {
    await sendAll(sqs, ["a-1", "b-1"]);
    const url = sqs.queueUrl(Q);
    const [old] = await receive(sqs, { MaxNumberOfMessages: 1 });
    const change = (handle: string, seconds: number) =>
      post(sqs.url, "ChangeMessageVisibility", {
        QueueUrl: url,
        ReceiptHandle: handle,
        VisibilityTimeout: seconds,
      });
    assert.equal((await change(old!.ReceiptHandle, 43_000)).status, 200);
    clock.advance(42_900_000);
    const beyond = await change(old!.ReceiptHandle, 600);
    assert.match(
      beyond.json.message,
      /Total VisibilityTimeout for the message is beyond the limit/,
    );
    assert.equal((await change(old!.ReceiptHandle, 43_200 - 42_900 - 5)).status, 200);
    clock.advance(300_000);
    const [current] = await receive(sqs, { MaxNumberOfMessages: 1 });
    assert.equal(current?.Body, "a-1");
    const stale = await change(old!.ReceiptHandle, 10);
    assert.match(stale.json.message, /not available for visibility timeout change/);
    const expired = await post(sqs.url, "DeleteMessage", {
      QueueUrl: url,
      ReceiptHandle: old!.ReceiptHandle,
    });
    assert.match(expired.json.message, /Reason: The receipt handle has expired\.$/);
    const batch = await post(sqs.url, "DeleteMessageBatch", {
      QueueUrl: url,
      Entries: [
        { Id: "0", ReceiptHandle: current!.ReceiptHandle },
        { Id: "1", ReceiptHandle: "not-a-handle" },
      ],
    });
    assert.deepEqual(batch.json.Successful, [{ Id: "0" }]);
    assert.equal(batch.json.Failed[0].Code, "ReceiptHandleIsInvalid");
    assert.deepEqual((await sqs.messages(Q)).map((m) => m.body), ["b-1"]);
  });
});

Deno.test("sqs fifo: a long poll answers as soon as a message arrives", async () => {
  await withFifo(async (sqs) => {
    const polling = receive(sqs, { WaitTimeSeconds: 5 });
    const started = performance.now();
    await sqs.send(Q, "late", {}, { groupId: "g" });
    assert.deepEqual(bodies(await polling), ["late"]);
    assert.ok(performance.now() - started < 2000);
  });
});

Deno.test("sqs fifo: the lab's wiring: without `fifo` fauxqs answers one of a group per receive; with it the proxy answers the group, sent through ownFetch", async () => {
  const fauxqs = await startFauxqs();
  const served = async (fifo: boolean) => {
    const proxy = startSqsProxy({ target: fauxqs.endpoint, fifo });
    try {
      // The lab's own calls: straight to fauxqs, or through the proxy when it keeps FIFO queues.
      const admin = fifo
        ? createSqsAdmin({ endpoint: proxy.url, fetch: proxy.ownFetch })
        : fauxqs.admin;
      const queueUrl = await admin.createQueue(`lab-${fifo}.fifo`, { FifoQueue: "true" });
      await admin.call("SendMessageBatch", {
        QueueUrl: queueUrl,
        Entries: ["1", "2", "3"].map((n) => ({
          Id: n,
          MessageBody: `g-${n}`,
          MessageGroupId: "g",
          MessageDeduplicationId: `d-${n}`,
        })),
      });
      const got = await post(proxy.url, "ReceiveMessage", {
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
      });
      assert.equal(proxy.stats().byAction.SendMessageBatch, undefined, "the lab's sends uncounted");
      return bodies(got.json.Messages ?? []);
    } finally {
      await proxy.close();
    }
  };
  try {
    assert.deepEqual(await served(false), ["g-1"]);
    assert.deepEqual(await served(true), ["g-1", "g-2", "g-3"]);
  } finally {
    await fauxqs.close();
  }
});
