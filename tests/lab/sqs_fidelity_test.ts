/**
 * What the SQS proxy makes up for fauxqs, as real SQS behaves: characters, the 1 MiB batch,
 * ListDeadLetterSourceQueues, DeadLetterQueueSourceArn and AWSTraceHeader, and the stale-handle
 * answers the worker depends on.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { escapeBody, refusedCharacter, unescapeBody } from "../../lab/sqs_fidelity.ts";
import { type LocalSqs, sqsPost as post, startLocalSqs } from "../support/local_sqs.ts";

const POLICY = JSON.stringify({
  deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
  maxReceiveCount: 2,
});

async function withSqs(fn: (sqs: LocalSqs) => Promise<void>) {
  const sqs = await startLocalSqs({
    queues: { dlq: {}, other: {}, work: { VisibilityTimeout: "30", RedrivePolicy: POLICY } },
  });
  try {
    await fn(sqs);
  } finally {
    await sqs.close();
  }
}

const md5 = (text: string) => createHash("md5").update(text).digest("hex");
const str = (v: string) => ({ DataType: "String", StringValue: v });

Deno.test("sqs fidelity: characters above U+FFFF pass as in SQS, with SQS's MD5s; the stored form round-trips", async () => {
  await withSqs(async (sqs) => {
    const body = "😀 \uf8ff is not JSON 🙂";
    const sent = await post(sqs.url, "SendMessage", {
      QueueUrl: sqs.queueUrl("work"),
      MessageBody: body,
      MessageAttributes: { sluice_reason: str("fine 😀\t\n") },
    });
    assert.equal(sent.status, 200, sent.text);
    assert.equal(sent.json.MD5OfMessageBody, md5(body));
    const got = await post(sqs.url, "ReceiveMessage", {
      QueueUrl: sqs.queueUrl("work"),
      MessageAttributeNames: ["All"],
    });
    assert.equal(got.json.Messages[0].Body, body);
    assert.equal(got.json.Messages[0].MD5OfBody, md5(body));
    assert.equal(got.json.Messages[0].MessageAttributes.sluice_reason.StringValue, "fine 😀\t\n");
    assert.deepEqual((await sqs.messages("work")).map((m) => m.body), [body]);
    for (const text of ["", "plain", "\uf8ff\uf8fe looks escaped", "\u{10ffff}\uf8ff000041"]) {
      assert.equal(unescapeBody(escapeBody(text)), text);
    }
    assert.equal(escapeBody("plain ✓"), "plain ✓", "a BMP body is stored as it is");
  });
});

Deno.test("sqs fidelity: refuses characters outside SQS's set in bodies and attribute values, with SQS's texts", async () => {
  await withSqs(async (sqs) => {
    const send = (body: string, attributes = {}) =>
      post(sqs.url, "SendMessage", {
        QueueUrl: sqs.queueUrl("work"),
        MessageBody: body,
        MessageAttributes: attributes,
      });
    const lone = await send("ok", { sluice_reason: str("bad \ud83d") });
    assert.equal(lone.json.__type, "com.amazonaws.sqs#InvalidParameterValue");
    assert.match(lone.json.message, /attribute 'sluice_reason' value contains invalid .*'#xD83D'/);
    const ctrl = await send("ok", { sluice_reason: str("\u0000") });
    assert.match(ctrl.json.message, /'#x0'/);
    const body = await send("body \u0001");
    assert.equal(body.json.__type, "com.amazonaws.sqs#InvalidMessageContents");
    assert.match(
      body.json.message,
      /^Invalid binary character '#x1' was found in the message body/,
    );
    assert.equal((await sqs.messages("work")).length, 0);
    // In a batch each refused entry fails alone; the others are sent.
    const batch = await post(sqs.url, "SendMessageBatch", {
      QueueUrl: sqs.queueUrl("work"),
      Entries: [
        { Id: "0", MessageBody: "fine" },
        { Id: "1", MessageBody: "lone \udc00" },
        { Id: "2", MessageBody: "😀", MessageAttributes: { a: str("\ufffe") } },
      ],
    });
    assert.deepEqual(batch.json.Successful.map((s: { Id: string }) => s.Id), ["0"]);
    assert.deepEqual(
      batch.json.Failed.map((f: { Id: string; Code: string }) => `${f.Id} ${f.Code}`),
      [
        "1 InvalidMessageContents",
        "2 InvalidParameterValue",
      ],
    );
    assert.equal(refusedCharacter("\t\n\r ~\ud7ff\ue000\ufffd\u{10000}"), undefined);
  });
});

Deno.test("sqs fidelity: a SendMessageBatch over 1 MiB in total is refused whole with BatchRequestTooLong", async () => {
  await withSqs(async (sqs) => {
    const entries = Array.from({ length: 6 }, (_, i) => ({
      Id: String(i),
      MessageBody: "x".repeat(200_000),
    }));
    const refused = await post(sqs.url, "SendMessageBatch", {
      QueueUrl: sqs.queueUrl("work"),
      Entries: entries,
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.__type, "com.amazonaws.sqs#BatchRequestTooLong");
    assert.equal(
      refused.json.message,
      "Batch requests cannot be longer than 1048576 bytes. You have sent 1200000 bytes.",
    );
    assert.equal((await sqs.messages("work")).length, 0);
    const ok = await post(sqs.url, "SendMessageBatch", {
      QueueUrl: sqs.queueUrl("work"),
      Entries: entries.slice(0, 5),
    });
    assert.equal(ok.json.Successful.length, 5);
  });
});

Deno.test("sqs fidelity: a redrive-moved message carries DeadLetterQueueSourceArn when asked; ListDeadLetterSourceQueues", async () => {
  await withSqs(async (sqs) => {
    await sqs.send("work", "m1");
    const receive = (queue: string, more: Record<string, unknown> = {}) =>
      post(sqs.url, "ReceiveMessage", {
        QueueUrl: sqs.queueUrl(queue),
        VisibilityTimeout: 0,
        ...more,
      });
    for (let i = 0; i < 2; i++) assert.equal((await receive("work")).json.Messages.length, 1);
    // The third receive finds it past maxReceiveCount: SQS moves it to the DLQ.
    assert.equal((await receive("work")).json.Messages, undefined);
    const plain = await receive("dlq", { MessageSystemAttributeNames: ["SentTimestamp"] });
    assert.equal(
      plain.json.Messages[0].Attributes.DeadLetterQueueSourceArn,
      undefined,
      "not asked for",
    );
    const asked = await receive("dlq", {
      MessageSystemAttributeNames: ["DeadLetterQueueSourceArn"],
    });
    assert.equal(
      asked.json.Messages[0].Attributes.DeadLetterQueueSourceArn,
      "arn:aws:sqs:us-east-1:000000000000:work",
    );
    // A copy sent to the DLQ (as sluice dead-letters) has no source.
    await sqs.send("other", "sent");
    const sent = await receive("other", { MessageSystemAttributeNames: ["All"] });
    assert.equal(sent.json.Messages[0].Attributes.DeadLetterQueueSourceArn, undefined);
    const sources = await post(sqs.url, "ListDeadLetterSourceQueues", {
      QueueUrl: sqs.queueUrl("dlq"),
    });
    assert.deepEqual(sources.json, { queueUrls: [sqs.queueUrl("work")] });
    const none = await post(sqs.url, "ListDeadLetterSourceQueues", {
      QueueUrl: sqs.queueUrl("other"),
    });
    assert.deepEqual(none.json, { queueUrls: [] });
    const missing = await post(sqs.url, "ListDeadLetterSourceQueues", {
      QueueUrl: sqs.queueUrl("gone"),
    });
    assert.equal(missing.json.__type, "com.amazonaws.sqs#QueueDoesNotExist");
  });
});

Deno.test("sqs fidelity: AWSTraceHeader sent as a system attribute comes back when asked for", async () => {
  await withSqs(async (sqs) => {
    const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    await post(sqs.url, "SendMessageBatch", {
      QueueUrl: sqs.queueUrl("work"),
      Entries: [
        { Id: "a", MessageBody: "traced", MessageSystemAttributes: { AWSTraceHeader: str(trace) } },
        { Id: "b", MessageBody: "untraced" },
      ],
    });
    const got = await post(sqs.url, "ReceiveMessage", {
      QueueUrl: sqs.queueUrl("work"),
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
      MessageSystemAttributeNames: ["AWSTraceHeader"],
    });
    const byBody = Object.fromEntries(
      got.json.Messages.map((m: { Body: string; Attributes?: Record<string, string> }) => [
        m.Body,
        m.Attributes?.AWSTraceHeader,
      ]),
    );
    assert.deepEqual(byBody, { traced: trace, untraced: undefined });
    const unasked = await post(sqs.url, "ReceiveMessage", {
      QueueUrl: sqs.queueUrl("work"),
      MaxNumberOfMessages: 10,
    });
    assert.ok(unasked.json.Messages.every((m: { Attributes?: unknown }) => !m.Attributes));
  });
});

Deno.test("sqs fidelity: a stale receipt handle deletes nothing and its visibility change answers MessageNotInflight", async () => {
  await withSqs(async (sqs) => {
    await sqs.send("work", "m");
    const receive = async () =>
      (await post(sqs.url, "ReceiveMessage", { QueueUrl: sqs.queueUrl("work") })).json.Messages[0]
        .ReceiptHandle as string;
    const first = await receive();
    await sqs.expire("work", first);
    const second = await receive();
    const stale = await post(sqs.url, "DeleteMessageBatch", {
      QueueUrl: sqs.queueUrl("work"),
      Entries: [{ Id: "0", ReceiptHandle: first }],
    });
    assert.deepEqual(stale.json, { Successful: [{ Id: "0" }], Failed: [] });
    assert.equal(
      (await sqs.messages("work")).length,
      1,
      "a stale delete succeeds without deleting",
    );
    const change = await post(sqs.url, "ChangeMessageVisibility", {
      QueueUrl: sqs.queueUrl("work"),
      ReceiptHandle: first,
      VisibilityTimeout: 10,
    });
    assert.equal(change.json.__type, "com.amazonaws.sqs#MessageNotInflight");
    await post(sqs.url, "DeleteMessage", { QueueUrl: sqs.queueUrl("work"), ReceiptHandle: second });
    assert.equal((await sqs.messages("work")).length, 0);
  });
});
