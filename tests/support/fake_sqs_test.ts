/** The fake SQS behaves like SQS where the worker depends on it (it backs the fault tests). */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { SqsClient } from "../../src/adapters/sqs_client.ts";
import { SqsError } from "../../src/lib/errors.ts";
import { startFakeSqs } from "./fake_sqs.ts";

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5);

async function setup() {
  const c = { t: T0 };
  const sqs = await startFakeSqs({
    now: () => c.t,
    queues: {
      dlq: {},
      work: {
        VisibilityTimeout: "30",
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
          maxReceiveCount: 2,
        }),
      },
    },
  });
  const client = new SqsClient({
    clock: { ...systemClock, now: () => c.t },
    region: "us-east-1",
    credentials: () => Promise.resolve({ accessKeyId: "a", secretAccessKey: "b" }),
  });
  const url = sqs.queueUrl("work");
  const receive = (wait = 0) =>
    client.receiveMessage({ queueUrl: url, maxNumberOfMessages: 10, waitTimeSeconds: wait });
  return { c, sqs, client, url, receive };
}

/** The fake (queue "work", redrive to "dlq" after 2 receives) and a client on it, for `fn`. */
async function withFake(fn: (fake: Awaited<ReturnType<typeof setup>>) => Promise<void>) {
  const fake = await setup();
  try {
    await fn(fake);
  } finally {
    await fake.sqs.close();
  }
}

async function sqsError(p: Promise<unknown>): Promise<SqsError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof SqsError, `expected SqsError, got ${err}`);
  return err;
}

Deno.test("fake: visibility, receive counts and redrive after maxReceiveCount", async () => {
  await withFake(async ({ c, sqs, receive }) => {
    sqs.send("work", "poison");
    assert.equal((await receive())[0]?.attributes.ApproximateReceiveCount, "1");
    assert.deepEqual(await receive(), []); // in flight
    c.t += 31_000;
    assert.equal((await receive())[0]?.attributes.ApproximateReceiveCount, "2");
    c.t += 31_000;
    // Third receive: moved to the DLQ instead of being delivered.
    assert.deepEqual(await receive(), []);
    assert.equal(sqs.messages("work").length, 0);
    assert.deepEqual(sqs.messages("dlq").map((m) => m.body), ["poison"]);
  });
});

Deno.test("fake: stale receipt handles delete nothing; visibility changes answer MessageNotInflight", async () => {
  await withFake(async ({ c, sqs, client, url, receive }) => {
    sqs.send("work", "m");
    const [first] = await receive();
    c.t += 31_000;
    const [second] = await receive();
    assert.ok(first && second);
    const stale = await client.deleteMessageBatch(url, [
      { id: "0", receiptHandle: first.receiptHandle },
    ]);
    assert.deepEqual(stale, { successful: ["0"], failed: [] });
    assert.equal(sqs.messages("work").length, 1, "a stale delete succeeds without deleting");
    const err = await sqsError(client.changeMessageVisibility(url, first.receiptHandle, 10));
    assert.equal(err.code, "MessageNotInflight");

    // 12-hour limit counted from the receive.
    await client.changeMessageVisibility(url, second.receiptHandle, 43_000);
    c.t += 42_900_000;
    const limit = await sqsError(client.changeMessageVisibility(url, second.receiptHandle, 600));
    assert.equal(limit.code, "InvalidParameterValue");
    await client.changeMessageVisibility(url, second.receiptHandle, 43200 - 42_900 - 5);
    await client.deleteMessageBatch(url, [{ id: "0", receiptHandle: second.receiptHandle }]);
    assert.equal(sqs.messages("work").length, 0);
  });
});

Deno.test("fake: SQS validation of batches and message attributes", async () => {
  await withFake(async ({ sqs, client, url }) => {
    const dup = await sqsError(client.deleteMessageBatch(url, [
      { id: "0", receiptHandle: "x" },
      { id: "0", receiptHandle: "y" },
    ]));
    assert.equal(dup.code, "BatchEntryIdsNotDistinct");
    const badId = await sqsError(
      client.deleteMessageBatch(url, [{ id: "a.b", receiptHandle: "x" }]),
    );
    assert.equal(badId.code, "InvalidBatchEntryId");
    const many = await sqsError(client.sendMessageBatch(
      url,
      Array.from({ length: 11 }, (_, i) => ({ id: String(i), body: "x" })),
    ));
    assert.equal(many.code, "TooManyEntriesInBatchRequest");
    assert.equal((await sqsError(client.deleteMessageBatch(url, []))).code, "EmptyBatchRequest");

    const tooMany = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`a${i}`, "v"]));
    const attrs = await sqsError(client.sendMessage(url, "x", tooMany));
    assert.equal(attrs.code, "InvalidParameterValue");
    const big = await sqsError(client.sendMessage(url, "x".repeat(1024 * 1024 + 1)));
    assert.equal(big.code, "InvalidParameterValue");
    assert.equal(sqs.messages("work").length, 0);
  });
});

Deno.test("fake: a long poll returns as soon as a message arrives; attributes; purge", async () => {
  await withFake(async ({ sqs, client, url, receive }) => {
    const polling = receive(20);
    while (sqs.requestsFor("ReceiveMessage").length === 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await client.sendMessage(url, "late", { k: "v" });
    const [m] = await polling;
    assert.equal(m?.body, "late");
    assert.deepEqual(m?.messageAttributes, { k: { DataType: "String", StringValue: "v" } });
    sqs.send("work", "other");
    const counts = await client.getQueueAttributes(url, [
      "ApproximateNumberOfMessages",
      "ApproximateNumberOfMessagesNotVisible",
    ]);
    assert.deepEqual(counts, {
      ApproximateNumberOfMessages: "1",
      ApproximateNumberOfMessagesNotVisible: "1",
    });
    await client.purgeQueue(url);
    assert.equal(sqs.messages("work").length, 0);
  });
});

Deno.test("fake: refuses characters outside SQS's set in bodies and attribute values, as SQS does", async () => {
  await withFake(async ({ sqs, client, url }) => {
    const lone = await sqsError(client.sendMessage(url, "ok", { sluice_reason: "bad \ud83d" }));
    assert.equal(lone.code, "InvalidParameterValue");
    assert.match(lone.message, /attribute 'sluice_reason' value contains invalid .*'#xD83D'/);
    const ctrl = await sqsError(client.sendMessage(url, "ok", { sluice_reason: "\u0000" }));
    assert.equal(ctrl.code, "InvalidParameterValue");
    const body = await sqsError(client.sendMessage(url, "body \u0001"));
    assert.equal(body.code, "InvalidMessageContents");
    await client.sendMessage(url, "fine 😀", { sluice_reason: "fine 😀\t\n" });
    assert.equal(sqs.messages("work").length, 1);
  });
});

Deno.test("fake: a redrive-moved message carries DeadLetterQueueSourceArn when asked; ListDeadLetterSourceQueues", async () => {
  await withFake(async ({ sqs, client }) => {
    sqs.createQueue("other");
    sqs.send("work", "m1");
    for (let i = 0; i < 2; i++) {
      const [m] = await client.receiveMessage({
        queueUrl: sqs.queueUrl("work"),
        maxNumberOfMessages: 1,
        waitTimeSeconds: 0,
        visibilityTimeout: 0,
      });
      assert.ok(m);
    }
    // The third receive finds it past maxReceiveCount: SQS moves it to the DLQ.
    await client.receiveMessage({
      queueUrl: sqs.queueUrl("work"),
      maxNumberOfMessages: 1,
      waitTimeSeconds: 0,
    });
    const dlq = sqs.queueUrl("dlq");
    const plain = await client.receiveMessage({
      queueUrl: dlq,
      maxNumberOfMessages: 1,
      waitTimeSeconds: 0,
      visibilityTimeout: 0,
    });
    assert.equal(plain[0]?.attributes.DeadLetterQueueSourceArn, undefined, "not asked for");
    const asked = await client.receiveMessage({
      queueUrl: dlq,
      maxNumberOfMessages: 1,
      waitTimeSeconds: 0,
      moreSystemAttributes: ["DeadLetterQueueSourceArn"],
    });
    assert.equal(
      asked[0]?.attributes.DeadLetterQueueSourceArn,
      "arn:aws:sqs:us-east-1:000000000000:work",
    );
    assert.deepEqual(await client.listDeadLetterSourceQueues(dlq), [sqs.queueUrl("work")]);
    assert.deepEqual(await client.listDeadLetterSourceQueues(sqs.queueUrl("other")), []);
  });
});

Deno.test("fake: a SendMessageBatch over 1 MiB in total is refused whole with BatchRequestTooLong", async () => {
  await withFake(async ({ sqs, client }) => {
    const entries = Array.from(
      { length: 6 },
      (_, i) => ({ id: String(i), body: "x".repeat(200_000) }),
    );
    const error = await sqsError(client.sendMessageBatch(sqs.queueUrl("work"), entries));
    assert.equal(error.code, "BatchRequestTooLong");
    assert.match(error.message, /cannot be longer than 1048576 bytes. You have sent 1200000 bytes/);
    assert.equal(sqs.messages("work").length, 0);
    const ok = await client.sendMessageBatch(sqs.queueUrl("work"), entries.slice(0, 5));
    assert.equal(ok.successful.length, 5);
  });
});
