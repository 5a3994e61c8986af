import assert from "node:assert/strict";
import { systemClock } from "../../src/lib/clock.ts";
import { buildApp } from "fauxqs";
import { SqsClient } from "../../src/adapters/sqs_client.ts";
import { SqsError } from "../../src/lib/errors.ts";
import { createSqsAdmin, type SqsAdmin } from "../../lab/sqs_admin.ts";

/** fauxqs in-process; its queue URLs use sqs.<region>.localhost, so the endpoint is overridden. */
async function withFauxqs(
  fn: (client: SqsClient, endpoint: string, admin: SqsAdmin) => Promise<void>,
) {
  const app = buildApp({ logger: false });
  await app.listen({ port: 0, host: "127.0.0.1" });
  try {
    const port = (app.server.address() as { port: number }).port;
    const endpoint = `http://127.0.0.1:${port}`;
    const client = new SqsClient({
      clock: systemClock,
      region: "us-east-1",
      endpoint,
      credentials: () => Promise.resolve({ accessKeyId: "test", secretAccessKey: "test" }),
    });
    await fn(client, endpoint, createSqsAdmin({ endpoint }));
  } finally {
    await app.close();
  }
}

Deno.test("fauxqs: queue lifecycle with RedrivePolicy, send, receive, visibility, delete, purge", async () => {
  await withFauxqs(async (sqs, _endpoint, admin) => {
    const dlqUrl = await admin.createQueue("sluice-dlq");
    const dlqArn = (await sqs.getQueueAttributes(dlqUrl, ["QueueArn"])).QueueArn;
    assert.match(dlqArn ?? "", /^arn:aws:sqs:us-east-1:\d+:sluice-dlq$/);
    const policy = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 5 });
    const queueUrl = await admin.createQueue("sluice-work", {
      VisibilityTimeout: "30",
      RedrivePolicy: policy,
    });
    assert.equal(await sqs.getQueueUrl("sluice-work"), queueUrl);

    const attrs = await sqs.getQueueAttributes(queueUrl, ["RedrivePolicy", "VisibilityTimeout"]);
    assert.deepEqual(JSON.parse(attrs.RedrivePolicy ?? "{}"), {
      deadLetterTargetArn: dlqArn,
      maxReceiveCount: 5,
    });
    assert.equal(attrs.VisibilityTimeout, "30");

    const sent = await sqs.sendMessage(queueUrl, '{"message_id":"m-1","ü":"ß"}', {
      sluice_error: "VALIDATION",
      sluice_reason: "",
    });
    const batch = await sqs.sendMessageBatch(queueUrl, [
      { id: "0", body: "two" },
      { id: "1", body: "three" },
    ]);
    assert.deepEqual(batch.successful.sort(), ["0", "1"]);
    assert.deepEqual(batch.failed, []);

    const received = [];
    while (received.length < 3) {
      const got = await sqs.receiveMessage({
        queueUrl,
        maxNumberOfMessages: 10,
        waitTimeSeconds: 1,
        visibilityTimeout: 60,
      });
      assert.ok(got.length > 0, "messages should arrive");
      received.push(...got);
    }
    const first = received.find((m) => m.messageId === sent.messageId);
    assert.ok(first);
    assert.equal(first.body, '{"message_id":"m-1","ü":"ß"}');
    assert.equal(first.attributes.ApproximateReceiveCount, "1");
    assert.match(first.attributes.SentTimestamp ?? "", /^\d{13}$/);
    assert.deepEqual(first.messageAttributes, {
      sluice_error: { DataType: "String", StringValue: "VALIDATION" },
    });

    // All three are in flight now.
    const inflight = await sqs.getQueueAttributes(queueUrl, [
      "ApproximateNumberOfMessages",
      "ApproximateNumberOfMessagesNotVisible",
    ]);
    assert.equal(inflight.ApproximateNumberOfMessages, "0");
    assert.equal(inflight.ApproximateNumberOfMessagesNotVisible, "3");

    // Release one immediately: it comes back with receive count 2.
    await sqs.changeMessageVisibility(queueUrl, first.receiptHandle, 0);
    const again = await sqs.receiveMessage({
      queueUrl,
      maxNumberOfMessages: 10,
      waitTimeSeconds: 1,
    });
    assert.equal(again.length, 1);
    assert.equal(again[0]?.messageId, first.messageId);
    assert.equal(again[0]?.attributes.ApproximateReceiveCount, "2");

    const others = received.filter((m) => m.messageId !== first.messageId);
    const vis = await sqs.changeMessageVisibilityBatch(
      queueUrl,
      others.map((m, i) => ({
        id: String(i),
        receiptHandle: m.receiptHandle,
        visibilityTimeout: 120,
      })),
    );
    assert.deepEqual(vis.successful.sort(), ["0", "1"]);

    const deleted = await sqs.deleteMessageBatch(queueUrl, [
      { id: "a", receiptHandle: again[0]!.receiptHandle },
      ...others.map((m, i) => ({ id: `o${i}`, receiptHandle: m.receiptHandle })),
    ]);
    assert.deepEqual(deleted.successful.sort(), ["a", "o0", "o1"]);
    assert.deepEqual(deleted.failed, []);
    const empty = await sqs.getQueueAttributes(queueUrl, ["All"]);
    assert.equal(empty.ApproximateNumberOfMessages, "0");
    assert.equal(empty.ApproximateNumberOfMessagesNotVisible, "0");

    // Purge the DLQ after putting something in it.
    await sqs.sendMessage(dlqUrl, "poison");
    assert.equal(
      (await sqs.getQueueAttributes(dlqUrl, ["ApproximateNumberOfMessages"]))
        .ApproximateNumberOfMessages,
      "1",
    );
    await sqs.purgeQueue(dlqUrl);
    assert.equal(
      (await sqs.getQueueAttributes(dlqUrl, ["ApproximateNumberOfMessages"]))
        .ApproximateNumberOfMessages,
      "0",
    );
  });
});

Deno.test("fauxqs: errors come back as SqsError codes", async () => {
  await withFauxqs(async (sqs, endpoint, admin) => {
    const missing = await sqs.getQueueUrl("nope").then(() => undefined, (e: unknown) => e);
    assert.ok(missing instanceof SqsError);
    assert.equal(missing.code, "QueueDoesNotExist");
    assert.equal(missing.retriable, false);

    const queueUrl = await admin.createQueue("errs");
    const bad = await sqs.changeMessageVisibility(queueUrl, "bogus-handle", 10).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(bad instanceof SqsError, `expected an SqsError from ${endpoint}`);
    assert.equal(bad.retriable, false);
    assert.ok(bad.status >= 400 && bad.status < 500);
  });
});
