/** The SQS proxy in front of fauxqs: counting, the outage, scripted answers, signature checks. */
import assert from "node:assert/strict";
import { AwsClient } from "aws4fetch";
import { messageIdOf } from "../../lab/sqs_proxy.ts";
import { sqsFaults } from "../../lab/sqs_answers.ts";
import { FakeClock } from "../support/fake_clock.ts";
import {
  type LocalSqs,
  type LocalSqsOptions,
  sqsPost as post,
  startLocalSqs,
} from "../support/local_sqs.ts";

const KEYS = { accessKeyId: "AKIDPROXY", secretAccessKey: "proxy/secret+key" };

async function withSqs(options: LocalSqsOptions, fn: (sqs: LocalSqs) => Promise<void>) {
  const sqs = await startLocalSqs(options);
  try {
    await fn(sqs);
  } finally {
    await sqs.close();
  }
}

Deno.test("sqs proxy: forwards, counts by action, records first receive, tracks held messages", async () => {
  const clock = new FakeClock({ start: 10_000 });
  await withSqs({ now: clock.now, queues: { q: {} } }, async (sqs) => {
    await sqs.send("q", JSON.stringify({ message_id: "m-1", user_id: "1" }));
    await sqs.send("q", "{not json");
    const url = sqs.queueUrl("q");
    const r1 = await post(sqs.url, "ReceiveMessage", {
      QueueUrl: url,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 30,
    });
    assert.equal(r1.status, 200);
    const [h1, h2] = (r1.json.Messages as Array<{ ReceiptHandle: string }>).map((m) =>
      m.ReceiptHandle
    );
    assert.ok(h1 && h2, r1.text);
    clock.set(11_000);
    await post(sqs.url, "ReceiveMessage", { QueueUrl: url });
    assert.equal(sqs.firstReceive.get("m-1"), 10_000, "first receive time kept");
    assert.equal(sqs.firstReceive.size, 1, "a poison body is tolerated and not recorded");
    assert.equal(sqs.inFlight(), 2, "both handles held");
    const del = await post(sqs.url, "DeleteMessageBatch", {
      QueueUrl: url,
      Entries: [{ Id: "0", ReceiptHandle: h1 }, { Id: "1", ReceiptHandle: "not-a-held-handle" }],
    });
    assert.equal(del.status, 200);
    assert.equal(sqs.inFlight(), 1, "only the held handle SQS deleted is settled");
    clock.set(11_000 + 31_000);
    assert.equal(sqs.inFlight(), 0, "an expired visibility no longer counts");
    const bad = await post(sqs.url, "Nope", {});
    assert.equal(bad.status, 400, "errors pass through");
    assert.match(bad.text, /InvalidAction/);
    const stats = sqs.stats();
    assert.deepEqual(stats.byAction, { ReceiveMessage: 2, DeleteMessageBatch: 1, Nope: 1 });
    assert.equal(stats.requests, 4);
    assert.equal(stats.messagesReceived, 2);
    assert.equal(stats.distinctReceived, 2);
    assert.equal(stats.deleted, 1);
    // The Authorization header reaches fauxqs, which takes a new queue's region from it.
    const created = await post(sqs.url, "CreateQueue", { QueueName: "eu" }, {
      authorization: "AWS4-HMAC-SHA256 Credential=A/20250101/eu-west-1/sqs/aws4_request",
    });
    assert.equal(created.json.QueueUrl, sqs.queueUrl("eu"), "queue URLs name the proxy");
    const arn = await post(sqs.url, "GetQueueAttributes", {
      QueueUrl: sqs.queueUrl("eu"),
      AttributeNames: ["QueueArn"],
    });
    assert.equal(arn.json.Attributes.QueueArn, "arn:aws:sqs:eu-west-1:000000000000:eu");
  });
});

Deno.test("sqs proxy: an outage answers 503 without reaching SQS, then recovers", async () => {
  const clock = new FakeClock({ start: 0 });
  await withSqs({ now: clock.now, queues: { q: {} } }, async (sqs) => {
    await sqs.send("q", "m");
    sqs.startOutage(5000);
    for (let i = 0; i < 2; i++) {
      const r = await post(sqs.url, "ReceiveMessage", { QueueUrl: sqs.queueUrl("q") });
      assert.equal(r.status, 503);
      assert.match(r.text, /ServiceUnavailable/);
    }
    assert.equal((await sqs.messages("q"))[0]?.receiveCount, 0, "SQS never saw the receives");
    clock.set(6000);
    const ok = await post(sqs.url, "ReceiveMessage", { QueueUrl: sqs.queueUrl("q") });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.Messages.length, 1);
    assert.equal(sqs.stats().outageAnswers, 2);
  });
});

Deno.test("sqs proxy: one-shot answers in order, for an action or any, before a persistent default", async () => {
  await withSqs({ queues: { q: {} } }, async (sqs) => {
    const url = sqs.queueUrl("q");
    const attributes = () => post(sqs.url, "GetQueueAttributes", { QueueUrl: url });
    sqs.setDefault("GetQueueAttributes", sqsFaults.accessDenied());
    sqs.respond("GetQueueAttributes", sqsFaults.throttling(), { passThrough: true });
    sqs.respond("*", sqsFaults.internalError());
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await attributes();
      codes.push(`${r.status} ${r.json.__type ?? "ok"}`);
    }
    assert.deepEqual(codes, [
      "400 com.amazonaws.sqs#ThrottlingException",
      "200 ok",
      "500 com.amazonaws.sqs#InternalError",
      "403 com.amazonaws.sqs#AccessDenied",
    ]);
    const denied = await attributes();
    assert.equal(
      denied.json.message,
      "Access to the resource https://sqs.us-east-1.amazonaws.com/ is denied.",
    );
    assert.equal(denied.headers.get("x-amzn-query-error"), "AccessDenied;Sender");
    sqs.setDefault("GetQueueAttributes", undefined);
    assert.equal((await attributes()).status, 200);
    assert.deepEqual(sqs.requestsFor("GetQueueAttributes").map((r) => r.status), [
      400,
      200,
      500,
      403,
      403,
      200,
    ]);
  });
});

Deno.test("sqs proxy: a function answer forwards what it chooses: a partial batch failure", async () => {
  await withSqs({ queues: { q: {} } }, async (sqs) => {
    const url = sqs.queueUrl("q");
    for (const body of ["a", "b"]) await sqs.send("q", body);
    const got = await post(sqs.url, "ReceiveMessage", { QueueUrl: url, MaxNumberOfMessages: 10 });
    const handles = (got.json.Messages as Array<{ ReceiptHandle: string }>).map((m) =>
      m.ReceiptHandle
    );
    sqs.respond("DeleteMessageBatch", async (call) => {
      const entries = call.body.Entries as Array<{ Id: string }>;
      const answer = await call.forward({ ...call.body, Entries: entries.slice(0, 1) });
      const ok = answer.body as { Successful: unknown[] };
      return {
        body: {
          Successful: ok.Successful,
          Failed: [{ Id: entries[1]!.Id, Code: "InternalError", Message: "x", SenderFault: false }],
        },
      };
    });
    const del = await post(sqs.url, "DeleteMessageBatch", {
      QueueUrl: url,
      Entries: handles.map((h, i) => ({ Id: String(i), ReceiptHandle: h })),
    });
    assert.deepEqual(del.json.Successful, [{ Id: "0" }]);
    assert.equal(del.json.Failed[0].Id, "1");
    assert.equal((await sqs.messages("q")).length, 1, "the kept entry was really deleted");
  });
});

Deno.test("sqs proxy: delays, a broken connection and a chunked answer", async () => {
  await withSqs({ queues: { q: {} } }, async (sqs) => {
    const url = sqs.queueUrl("q");
    sqs.respond("GetQueueAttributes", sqsFaults.slow(150));
    const started = performance.now();
    const slow = await post(sqs.url, "GetQueueAttributes", { QueueUrl: url });
    assert.equal(slow.status, 200, "a slow answer is still SQS's");
    assert.ok(performance.now() - started >= 140);
    sqs.respond("GetQueueAttributes", sqsFaults.brokenConnection());
    await assert.rejects(post(sqs.url, "GetQueueAttributes", { QueueUrl: url }));
    sqs.respond("GetQueueAttributes", {
      body: { Attributes: { Policy: "p".repeat(200_000) } },
      chunked: true,
    });
    const res = await fetch(`${sqs.url}/`, {
      method: "POST",
      headers: { "x-amz-target": "AmazonSQS.GetQueueAttributes" },
      body: "{}",
    });
    assert.equal(res.headers.get("content-length"), null);
    assert.equal((await res.json()).Attributes.Policy.length, 200_000);
  });
});

/** `action` on the proxy, signed by aws4fetch (not sluice's signer) at `amzDate`. */
async function signed(
  sqs: LocalSqs,
  action: string,
  body: unknown,
  keys: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  amzDate: string,
) {
  const aws = new AwsClient({ ...keys, service: "sqs", region: "us-east-1", retries: 0 });
  const request = await aws.sign(`${sqs.url}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `AmazonSQS.${action}`,
    },
    body: JSON.stringify(body),
    aws: { datetime: amzDate },
  });
  const res = await fetch(request);
  return { status: res.status, json: await res.json(), date: res.headers.get("date") };
}

Deno.test("sqs proxy: verifyWith: a right signature passes, a wrong secret is 403 SignatureDoesNotMatch", async () => {
  const clock = new FakeClock({ start: Date.UTC(2025, 0, 2, 3, 4, 5) });
  await withSqs({ verifyWith: KEYS, now: clock.now, queues: { q: {} } }, async (sqs) => {
    const body = { QueueUrl: sqs.queueUrl("q"), AttributeNames: ["QueueArn"] };
    const ok = await signed(sqs, "GetQueueAttributes", body, KEYS, "20250102T030405Z");
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    const wrong = { ...KEYS, secretAccessKey: "not-the-secret" };
    const refused = await signed(sqs, "GetQueueAttributes", body, wrong, "20250102T030405Z");
    assert.equal(refused.status, 403);
    assert.equal(refused.json.__type, "com.amazonaws.sqs#SignatureDoesNotMatch");
    assert.match(refused.json.message, /^The request signature we calculated does not match/);
    const unsigned = await post(sqs.url, "GetQueueAttributes", body);
    assert.equal(unsigned.status, 403);
    const token = { ...KEYS, sessionToken: "a-token" };
    const stranger = await signed(sqs, "GetQueueAttributes", body, token, "20250102T030405Z");
    assert.equal(stranger.status, 403, "a token the keys do not have");
    assert.deepEqual(sqs.requests.map((r) => r.signatureValid), [true, false, false, false]);
  });
});

Deno.test("sqs proxy: verifyWith: a request signed 20 minutes off is 'Signature expired' with the server's Date", async () => {
  const serverTime = Date.UTC(2025, 0, 2, 3, 4, 5);
  const clock = new FakeClock({ start: serverTime });
  await withSqs({ verifyWith: KEYS, now: clock.now, queues: { q: {} } }, async (sqs) => {
    const body = { QueueUrl: sqs.queueUrl("q") };
    const early = await signed(sqs, "GetQueueAttributes", body, KEYS, "20250102T024405Z");
    assert.equal(early.status, 403);
    assert.equal(
      early.json.message,
      "Signature expired: 20250102T024405Z is now earlier than 20250102T024905Z (20250102T030405Z - 15 min.)",
    );
    assert.equal(early.date, new Date(serverTime).toUTCString());
    const late = await signed(sqs, "GetQueueAttributes", body, KEYS, "20250102T032405Z");
    assert.match(late.json.message, /^Signature not yet current: 20250102T032405Z is still later/);
    const within = await signed(sqs, "GetQueueAttributes", body, KEYS, "20250102T031405Z");
    assert.equal(within.status, 200, "10 minutes off is within SQS's 15");
  });
});

Deno.test("sqs proxy: messageIdOf: only string ids of JSON objects", () => {
  assert.equal(messageIdOf('{"message_id":"a"}'), "a");
  assert.equal(messageIdOf('{"message_id":1}'), undefined);
  assert.equal(messageIdOf('{"message_id":""}'), undefined);
  assert.equal(messageIdOf('["{"]'), undefined);
  assert.equal(messageIdOf("{bad"), undefined);
  assert.equal(messageIdOf('{"__proto__":{"message_id":"x"}}'), undefined);
  assert.equal(messageIdOf(undefined), undefined);
});
