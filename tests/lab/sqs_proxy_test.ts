import assert from "node:assert/strict";
import { messageIdOf, startSqsProxy } from "../../lab/sqs_proxy.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** A fake SQS upstream that answers ReceiveMessage with two messages and acknowledges deletes. */
function fakeSqs() {
  const seen: Array<{ action: string; body: string; auth: string | null }> = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const action = (req.headers.get("x-amz-target") ?? "").split(".").pop() ?? "";
    const body = await req.text();
    seen.push({ action, body, auth: req.headers.get("authorization") });
    const json = (v: unknown) =>
      new Response(JSON.stringify(v), {
        headers: { "content-type": "application/x-amz-json-1.0" },
      });
    if (action === "ReceiveMessage") {
      return json({
        Messages: [
          {
            MessageId: "s1",
            ReceiptHandle: "h1",
            Body: JSON.stringify({ message_id: "m-1", user_id: "1" }),
          },
          { MessageId: "s2", ReceiptHandle: "h2", Body: "{not json" },
        ],
      });
    }
    if (action === "DeleteMessageBatch") return json({ Successful: [{ Id: "0" }], Failed: [] });
    return new Response(
      JSON.stringify({ __type: "com.amazonaws.sqs#InvalidAction", message: "no" }),
      {
        status: 400,
      },
    );
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

const call = async (url: string, action: string, body: unknown) => {
  const res = await fetch(`${url}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `AmazonSQS.${action}`,
      authorization: "AWS4-HMAC-SHA256 test",
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
};

Deno.test("sqs proxy: forwards, counts by action, records first receive, tracks held messages", async () => {
  const upstream = fakeSqs();
  const clock = new FakeClock({ start: 10_000 });
  const proxy = startSqsProxy({ target: upstream.url, now: clock.now });
  try {
    const r1 = await call(proxy.url, "ReceiveMessage", { QueueUrl: "q", VisibilityTimeout: 30 });
    assert.equal(r1.status, 200);
    assert.equal(JSON.parse(r1.text).Messages.length, 2);
    clock.set(11_000);
    await call(proxy.url, "ReceiveMessage", { QueueUrl: "q" });
    assert.equal(proxy.firstReceive.get("m-1"), 10_000, "first receive time kept");
    assert.equal(proxy.firstReceive.size, 1, "a poison body is tolerated and not recorded");
    assert.equal(proxy.inFlight(), 2, "h1 and h2 held (the same handles again)");
    const del = await call(proxy.url, "DeleteMessageBatch", {
      QueueUrl: "q",
      Entries: [{ Id: "0", ReceiptHandle: "h1" }, { Id: "1", ReceiptHandle: "h2" }],
    });
    assert.equal(del.status, 200);
    assert.equal(proxy.inFlight(), 1, "only the entry SQS reported successful is settled");
    clock.set(11_000 + 31_000);
    assert.equal(proxy.inFlight(), 0, "an expired visibility no longer counts");
    const bad = await call(proxy.url, "Nope", {});
    assert.equal(bad.status, 400, "errors pass through");
    const stats = proxy.stats();
    assert.deepEqual(stats.byAction, { ReceiveMessage: 2, DeleteMessageBatch: 1, Nope: 1 });
    assert.equal(stats.requests, 4);
    assert.equal(stats.messagesReceived, 4);
    assert.equal(stats.distinctReceived, 2);
    assert.equal(stats.deleted, 1);
    assert.equal(upstream.seen[0]!.auth, "AWS4-HMAC-SHA256 test", "headers are forwarded");
    assert.equal(JSON.parse(upstream.seen[0]!.body).VisibilityTimeout, 30, "body is forwarded");
  } finally {
    await proxy.close();
    await upstream.close();
  }
});

Deno.test("sqs proxy: an outage answers 503 without reaching SQS, then recovers", async () => {
  const upstream = fakeSqs();
  const clock = new FakeClock({ start: 0 });
  const proxy = startSqsProxy({ target: upstream.url, now: clock.now });
  try {
    proxy.startOutage(5000);
    for (let i = 0; i < 2; i++) {
      const r = await call(proxy.url, "ReceiveMessage", { QueueUrl: "q" });
      assert.equal(r.status, 503);
      assert.match(r.text, /ServiceUnavailable/);
    }
    assert.equal(upstream.seen.length, 0);
    clock.set(6000);
    const ok = await call(proxy.url, "ReceiveMessage", { QueueUrl: "q" });
    assert.equal(ok.status, 200);
    assert.equal(proxy.stats().outageAnswers, 2);
  } finally {
    await proxy.close();
    await upstream.close();
  }
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
