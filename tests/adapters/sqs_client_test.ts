import assert from "node:assert/strict";
import { FakeClock } from "../support/fake_clock.ts";
import { systemClock } from "../../src/lib/clock.ts";
import {
  isStaleHandle,
  regionFromQueueUrl,
  SqsClient,
  type SqsClientOptions,
} from "../../src/adapters/sqs_client.ts";
import { SqsError, TimeoutError } from "../../src/lib/errors.ts";
import { scrubAwsText } from "../../src/adapters/aws_error_text.ts";
import type { AwsCredentials } from "../../src/adapters/aws_credentials.ts";
import { type LocalSqs, type LocalSqsOptions, startLocalSqs } from "../support/local_sqs.ts";
import { sqsError, sqsFaults } from "../../lab/sqs_answers.ts";

const KEYS = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};
const T0 = Date.UTC(2025, 0, 2, 3, 4, 5);

/** A fake clock shared by client and the verifying proxy so signatures are within the skew window. */
function clock(start = T0) {
  return new FakeClock({ start });
}

async function withFake(
  options: LocalSqsOptions,
  fn: (sqs: LocalSqs) => Promise<void>,
): Promise<void> {
  const sqs = await startLocalSqs(options);
  try {
    await fn(sqs);
  } finally {
    await sqs.close();
  }
}

function client(
  overrides: Partial<SqsClientOptions> & { creds?: AwsCredentials } = {},
): { client: SqsClient; calls: Array<[string, string]> } {
  const calls: Array<[string, string]> = [];
  const creds = overrides.creds ?? KEYS;
  const c = new SqsClient({
    clock: systemClock,
    region: "us-east-1",
    credentials: () => Promise.resolve(creds),
    onRequest: (action, result) => calls.push([action, result]),
    ...overrides,
  });
  return { client: c, calls };
}

async function rejects(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

Deno.test("sqs client: receiveMessage sends a signed JSON request of the right shape and maps messages", async () => {
  const c = clock();
  await withFake({ verifyWith: KEYS, now: c.now, queues: { work: {} } }, async (sqs) => {
    await sqs.send("work", "héllo wörld", { trace: "abc" });
    const { client: sqsClient, calls } = client({ clock: c });
    const messages = await sqsClient.receiveMessage({
      queueUrl: sqs.queueUrl("work"),
      maxNumberOfMessages: 10,
      waitTimeSeconds: 0,
      visibilityTimeout: 45,
    });

    const [req] = sqs.requests;
    assert.ok(req);
    assert.equal(req.method, "POST");
    assert.equal(req.path, "/");
    assert.equal(req.headers["content-type"], "application/x-amz-json-1.0");
    assert.equal(req.headers["x-amz-target"], "AmazonSQS.ReceiveMessage");
    assert.equal(req.headers["x-amz-date"], "20250102T030405Z");
    assert.equal(req.headers["x-amz-security-token"], undefined);
    assert.match(
      req.headers["authorization"] ?? "",
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20250102\/us-east-1\/sqs\/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=[0-9a-f]{64}$/,
    );
    assert.equal(req.signatureValid, true);
    assert.deepEqual(req.body, {
      QueueUrl: sqs.queueUrl("work"),
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp", "AWSTraceHeader"],
      AttributeNames: ["ApproximateReceiveCount", "SentTimestamp", "AWSTraceHeader"],
      MessageAttributeNames: ["All"],
      VisibilityTimeout: 45,
    });

    assert.equal(messages.length, 1);
    const m = messages[0]!;
    assert.equal(m.body, "héllo wörld");
    assert.equal(m.attributes.ApproximateReceiveCount, "1");
    const [stored] = await sqs.messages("work");
    assert.equal(m.attributes.SentTimestamp, String(stored?.sentAt));
    assert.deepEqual(m.messageAttributes, { trace: { DataType: "String", StringValue: "abc" } });
    assert.match(m.md5OfBody ?? "", /^[0-9a-f]{32}$/);
    assert.ok(m.receiptHandle.length > 0);
    assert.deepEqual(calls, [["ReceiveMessage", "ok"]]);
    // The receipt handle works for a delete: the queue is empty afterwards.
    const result = await sqsClient.deleteMessageBatch(sqs.queueUrl("work"), [
      { id: "0", receiptHandle: m.receiptHandle },
    ]);
    assert.deepEqual(result, { successful: ["0"], failed: [] });
    assert.equal((await sqs.messages("work")).length, 0);
  });
});

Deno.test("sqs client: a session token is sent as a signed X-Amz-Security-Token", async () => {
  const c = clock();
  const creds = { ...KEYS, sessionToken: "FQoGZXIvYXdzE//token+with/slashes==" };
  await withFake({ verifyWith: creds, now: c.now, queues: { work: {} } }, async (sqs) => {
    const { client: sqsClient } = client({ clock: c, creds });
    await sqsClient.getQueueAttributes(sqs.queueUrl("work"), ["All"]);
    const req = sqs.requests[0]!;
    assert.equal(req.headers["x-amz-security-token"], creds.sessionToken);
    assert.match(
      req.headers["authorization"] ?? "",
      /SignedHeaders=host;x-amz-date;x-amz-security-token;x-amz-target,/,
    );
    assert.equal(req.signatureValid, true);
  });
});

Deno.test("sqs client: a wrong secret is refused by the verifying proxy and is not retriable", async () => {
  const c = clock();
  await withFake({ verifyWith: KEYS, now: c.now, queues: { work: {} } }, async (sqs) => {
    const { client: sqsClient, calls } = client({
      clock: c,
      creds: { ...KEYS, secretAccessKey: "not-the-secret" },
    });
    const err = await rejects(sqsClient.purgeQueue(sqs.queueUrl("work")));
    assert.ok(err instanceof SqsError);
    assert.equal(err.code, "SignatureDoesNotMatch");
    assert.equal(err.status, 403);
    assert.equal(err.retriable, false);
    assert.equal(sqs.requests[0]?.signatureValid, false);
    assert.deepEqual(calls, [["PurgeQueue", "SignatureDoesNotMatch"]]);
  });
});

Deno.test("sqs client: sendMessage sends String attributes and skips empty values", async () => {
  await withFake({ queues: { dlq: {} } }, async (sqs) => {
    const { client: sqsClient } = client();
    const out = await sqsClient.sendMessage(sqs.queueUrl("dlq"), '{"a":"ü"}', {
      sluice_error: "VALIDATION",
      sluice_reason: "",
    });
    assert.equal(sqs.requests[0]?.headers["x-amz-target"], "AmazonSQS.SendMessage");
    assert.deepEqual(sqs.requests[0]?.body, {
      QueueUrl: sqs.queueUrl("dlq"),
      MessageBody: '{"a":"ü"}',
      MessageAttributes: { sluice_error: { DataType: "String", StringValue: "VALIDATION" } },
    });
    const stored = await sqs.messages("dlq");
    assert.equal(stored.length, 1);
    assert.equal(stored[0]?.messageId, out.messageId);
    assert.equal(stored[0]?.body, '{"a":"ü"}');

    // Without attributes no MessageAttributes member is sent at all.
    await sqsClient.sendMessage(sqs.queueUrl("dlq"), "x", { only: "" });
    assert.equal(sqs.requests[1]?.body?.MessageAttributes, undefined);
  });
});

Deno.test("sqs client: error answers become SqsError with the short code and the right retriable flag", async () => {
  await withFake({ queues: { work: {} } }, async (sqs) => {
    const { client: sqsClient, calls } = client();
    const url = sqs.queueUrl("work");
    const cases: Array<[string, boolean, number, () => void]> = [
      ["ThrottlingException", true, 400, () => sqs.respond("*", sqsFaults.throttling())],
      ["RequestThrottled", true, 403, () => sqs.respond("*", sqsFaults.requestThrottled())],
      ["InternalError", true, 500, () => sqs.respond("*", sqsFaults.internalError())],
      ["ServiceUnavailable", true, 503, () => sqs.respond("*", sqsFaults.serviceUnavailable())],
      ["Http502", true, 502, () => sqs.respond("*", sqsFaults.gatewayError(502))],
      [
        "ReceiptHandleIsInvalid",
        false,
        400,
        () => sqs.respond("*", sqsFaults.receiptHandleIsInvalid()),
      ],
      ["MessageNotInflight", false, 400, () => sqs.respond("*", sqsFaults.messageNotInflight())],
      ["RequestThrottled", true, 400, () =>
        sqs.respond("*", {
          status: 400,
          body: "",
          headers: { "x-amzn-query-error": "AWS.SimpleQueueService.RequestThrottled;Sender" },
        })],
      ["NonExistentQueue", false, 400, () =>
        sqs.respond("*", {
          status: 400,
          body: {},
          headers: { "x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender" },
        })],
      ["TooManyRequests", true, 429, () =>
        sqs.respond("*", {
          status: 429,
          body: { __type: "com.amazonaws.sqs#TooManyRequests", message: "slow down" },
        })],
    ];
    for (const [code, retriable, status, script] of cases) {
      script();
      const err = await rejects(sqsClient.changeMessageVisibility(url, "rh", 10));
      assert.ok(err instanceof SqsError, code);
      assert.equal(err.code, code);
      assert.equal(err.status, status, code);
      assert.equal(err.retriable, retriable, code);
      assert.equal(err.category, retriable ? "TRANSIENT" : "PERMANENT");
    }
    assert.deepEqual(calls.map(([, result]) => result), cases.map(([code]) => code));

    // SQS's own error (fauxqs behind the proxy): an unknown queue, code from __type.
    const err = await rejects(client({ endpoint: sqs.url }).client.getQueueUrl("missing"));
    assert.ok(err instanceof SqsError);
    assert.equal(err.code, "QueueDoesNotExist");
    assert.match(err.message, /does not exist/);
  });
});

Deno.test("sqs client: batch calls surface partial failures per entry", async () => {
  await withFake({ queues: { work: { VisibilityTimeout: "30" } } }, async (sqs) => {
    const { client: sqsClient } = client();
    const url = sqs.queueUrl("work");
    await sqs.send("work", "a");
    await sqs.send("work", "b");
    const [a, b] = await sqsClient.receiveMessage({
      queueUrl: url,
      maxNumberOfMessages: 2,
      waitTimeSeconds: 0,
    });
    assert.ok(a && b);

    const vis = await sqsClient.changeMessageVisibilityBatch(url, [
      { id: "0", receiptHandle: a.receiptHandle, visibilityTimeout: 60 },
      { id: "1", receiptHandle: "not-a-handle", visibilityTimeout: 60 },
    ]);
    assert.deepEqual(vis.successful, ["0"]);
    assert.equal(vis.failed.length, 1);
    assert.deepEqual(vis.failed[0], {
      id: "1",
      code: "ReceiptHandleIsInvalid",
      message: "The input receipt handle is invalid.",
      senderFault: true,
    });

    // b's visibility runs out; a's was extended to 60 s.
    await sqs.expire("work", b.receiptHandle);
    const late = await sqsClient.changeMessageVisibilityBatch(url, [
      { id: "a", receiptHandle: a.receiptHandle, visibilityTimeout: 0 },
      { id: "b", receiptHandle: b.receiptHandle, visibilityTimeout: 0 },
    ]);
    assert.deepEqual(late.successful, ["a"]);
    assert.equal(late.failed[0]?.id, "b");
    assert.equal(late.failed[0]?.code, "ReceiptHandleIsInvalid");

    const single = await rejects(sqsClient.changeMessageVisibility(url, b.receiptHandle, 5));
    assert.ok(single instanceof SqsError);
    assert.equal(single.code, "MessageNotInflight");
    assert.equal(single.retriable, false);

    sqs.respond(
      "SendMessageBatch",
      sqsFaults.partialBatch(["0"], [{ id: "1", code: "InternalError" }]),
    );
    const sent = await sqsClient.sendMessageBatch(url, [{ id: "0", body: "x" }, {
      id: "1",
      body: "y",
    }]);
    assert.deepEqual(sent.successful, ["0"]);
    assert.deepEqual(sent.failed.map((f) => f.code), ["InternalError"]);
    assert.deepEqual(sqs.requestsFor("SendMessageBatch")[0]?.body?.Entries, [
      { Id: "0", MessageBody: "x" },
      { Id: "1", MessageBody: "y" },
    ]);
  });
});

Deno.test("sqs client: a slow answer becomes a TimeoutError", async () => {
  await withFake({ queues: { work: {} } }, async (sqs) => {
    const { client: sqsClient, calls } = client({ timeoutMs: 50 });
    sqs.respond("GetQueueAttributes", sqsFaults.slow(10_000));
    const err = await rejects(sqsClient.getQueueAttributes(sqs.queueUrl("work"), ["All"]));
    assert.ok(err instanceof TimeoutError);
    assert.equal(err.target, "SQS GetQueueAttributes");
    assert.deepEqual(calls, [["GetQueueAttributes", "timeout"]]);
  });
});

Deno.test("sqs client: a long poll gets waitTimeSeconds on top of the request timeout", async () => {
  await withFake({ queues: { work: {} } }, async (sqs) => {
    const { client: sqsClient } = client({ timeoutMs: 50 });
    // 300 ms is far beyond timeoutMs but well inside 1 s + 50 ms.
    sqs.respond("ReceiveMessage", sqsFaults.slow(300, { body: { Messages: [] } }));
    const messages = await sqsClient.receiveMessage({
      queueUrl: sqs.queueUrl("work"),
      maxNumberOfMessages: 1,
      waitTimeSeconds: 1,
    });
    assert.deepEqual(messages, []);
  });
});

Deno.test("sqs client: the caller's abort propagates its reason, during a request and before one", async () => {
  await withFake({ queues: { work: {} } }, async (sqs) => {
    const { client: sqsClient, calls } = client();
    const controller = new AbortController();
    const reason = new Error("shutting down");
    const pending = sqsClient.receiveMessage({
      queueUrl: sqs.queueUrl("work"),
      maxNumberOfMessages: 10,
      waitTimeSeconds: 20,
      signal: controller.signal,
    });
    // Abort once the long poll has reached the proxy.
    while (sqs.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort(reason);
    assert.equal(await rejects(pending), reason);
    assert.deepEqual(calls, [["ReceiveMessage", "aborted"]]);

    const before = await rejects(
      sqsClient.deleteMessageBatch(
        sqs.queueUrl("work"),
        [{ id: "0", receiptHandle: "x" }],
        controller.signal,
      ),
    );
    assert.equal(before, reason);
    assert.equal(sqs.requests.length, 1);
  });
});

Deno.test("sqs client: network failures become a retriable NetworkError with status 0", async () => {
  await withFake({ queues: { work: {} } }, async (sqs) => {
    const { client: sqsClient, calls } = client();
    sqs.respond("ReceiveMessage", sqsFaults.brokenConnection());
    const err = await rejects(sqsClient.receiveMessage({
      queueUrl: sqs.queueUrl("work"),
      maxNumberOfMessages: 1,
      waitTimeSeconds: 0,
    }));
    assert.ok(err instanceof SqsError);
    assert.equal(err.code, "NetworkError");
    assert.equal(err.status, 0);
    assert.equal(err.retriable, true);
    assert.deepEqual(calls, [["ReceiveMessage", "network"]]);
  });
  // Nothing listens on a closed proxy's port any more.
  const closed = await startLocalSqs();
  await closed.close();
  const { client: sqsClient } = client({ endpoint: closed.url });
  const err = await rejects(sqsClient.getQueueUrl("q"));
  assert.ok(err instanceof SqsError);
  assert.equal(err.code, "NetworkError");
  // Which failure, and where: not the runtime's "fetch failed".
  assert.match(
    err.message,
    new RegExp(`got no answer: connection refused by ${new URL(closed.url).host} \\(nothing`),
  );
});

Deno.test("sqs client: clock skew: retries once with the server's time and keeps the offset", async () => {
  const c = clock();
  const serverTime = T0 + 3_600_000 + 7_000;
  await withFake({ queues: { work: {} } }, async (sqs) => {
    const { client: sqsClient, calls } = client({ clock: c });
    sqs.respond("GetQueueAttributes", sqsFaults.requestTimeTooSkewed(serverTime));
    const attrs = await sqsClient.getQueueAttributes(sqs.queueUrl("work"), ["QueueArn"]);
    assert.equal(attrs.QueueArn, "arn:aws:sqs:us-east-1:000000000000:work");
    assert.equal(sqs.requests.length, 2);
    assert.equal(sqs.requests[0]?.headers["x-amz-date"], "20250102T030405Z");
    assert.equal(sqs.requests[1]?.headers["x-amz-date"], "20250102T040412Z");
    assert.equal(sqsClient.clockOffsetMs, serverTime - T0);
    assert.deepEqual(calls, [["GetQueueAttributes", "RequestTimeTooSkewed"], [
      "GetQueueAttributes",
      "ok",
    ]]);

    // Later requests are signed with the offset straight away.
    c.advance(60_000);
    await sqsClient.purgeQueue(sqs.queueUrl("work"));
    assert.equal(sqs.requests[2]?.headers["x-amz-date"], "20250102T040512Z");

    // Only one retry: a second skew answer in a row is thrown.
    sqs.respond(
      "PurgeQueue",
      sqsFaults.requestTimeTooSkewed(serverTime),
      sqsFaults.requestTimeTooSkewed(serverTime),
    );
    const err = await rejects(sqsClient.purgeQueue(sqs.queueUrl("work")));
    assert.ok(err instanceof SqsError);
    assert.equal(err.code, "RequestTimeTooSkewed");
    assert.equal(sqs.requests.length, 5);
  });
});

Deno.test("sqs client: clock skew against the verifying proxy: 'Signature expired' then a valid request", async () => {
  const clientClock = clock();
  const serverClock = clock(T0 - 20 * 60_000); // the client runs 20 minutes fast
  await withFake(
    { verifyWith: KEYS, now: serverClock.now, queues: { work: {} } },
    async (sqs) => {
      const { client: sqsClient } = client({ clock: clientClock });
      await sqsClient.sendMessage(sqs.queueUrl("work"), "body");
      assert.deepEqual(sqs.requests.map((r) => r.status), [403, 200]);
      assert.deepEqual(sqs.requests.map((r) => r.signatureValid), [false, true]);
      assert.equal(sqs.requests[1]?.headers["x-amz-date"], "20250102T024405Z");
      assert.equal((await sqs.messages("work")).length, 1);
    },
  );
});

Deno.test("sqs client: endpoint: override, else the queue URL's origin, else the regional endpoint", async () => {
  const seen: string[] = [];
  const fakeFetch: typeof fetch = (input) => {
    seen.push(input instanceof Request ? input.url : String(input));
    return Promise.resolve(Response.json({ QueueUrl: "https://x/1/q" }));
  };
  const regional = client({ fetch: fakeFetch, region: "eu-west-1" }).client;
  await regional.getQueueUrl("q", "123456789012");
  await regional.purgeQueue("https://sqs.eu-west-1.amazonaws.com/123/q");
  const overridden = client({ fetch: fakeFetch, endpoint: "http://127.0.0.1:4566" }).client;
  await overridden.purgeQueue("https://sqs.eu-west-1.amazonaws.com/123/q");
  assert.deepEqual(seen, [
    "https://sqs.eu-west-1.amazonaws.com/",
    "https://sqs.eu-west-1.amazonaws.com/",
    "http://127.0.0.1:4566/",
  ]);
});

Deno.test("sqs client: getQueueUrl sends the owner account id; getQueueAttributes reads the policy", async () => {
  const policy = JSON.stringify({
    deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:work-dlq",
    maxReceiveCount: 3,
  });
  await withFake({ queues: { work: { RedrivePolicy: policy } } }, async (sqs) => {
    const { client: sqsClient } = client({ endpoint: sqs.url });
    const url = sqs.queueUrl("work");
    assert.equal(await sqsClient.getQueueUrl("work", "000000000000"), url);
    assert.deepEqual(sqs.requestsFor("GetQueueUrl")[0]?.body, {
      QueueName: "work",
      QueueOwnerAWSAccountId: "000000000000",
    });
    const attrs = await sqsClient.getQueueAttributes(url, ["RedrivePolicy"]);
    assert.deepEqual(attrs, { RedrivePolicy: policy });
  });
});

Deno.test("sqs client: a credentials failure becomes a retriable SqsError with the cause", async () => {
  const cause = new Error("Cannot find AWS credentials: tried nothing");
  const sqsClient = new SqsClient({
    clock: systemClock,
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9",
    credentials: () => Promise.reject(cause),
  });
  const err = await rejects(sqsClient.getQueueUrl("q"));
  assert.ok(err instanceof SqsError);
  assert.equal(err.code, "CredentialsError");
  assert.equal(err.cause, cause);
});

Deno.test("sqs client: regionFromQueueUrl", () => {
  assert.equal(regionFromQueueUrl("https://sqs.eu-west-1.amazonaws.com/123/q"), "eu-west-1");
  assert.equal(regionFromQueueUrl("https://sqs.cn-north-1.amazonaws.com.cn/123/q"), "cn-north-1");
  assert.equal(
    regionFromQueueUrl("https://us-gov-west-1.queue.amazonaws.com/1/q"),
    "us-gov-west-1",
  );
  assert.equal(regionFromQueueUrl("http://sqs.us-east-1.localhost:4566/000/q"), "us-east-1");
  assert.equal(
    regionFromQueueUrl("https://vpce-0a1b-xyz.sqs.ap-southeast-2.vpce.amazonaws.com/1/q"),
    "ap-southeast-2",
  );
  assert.equal(regionFromQueueUrl("http://127.0.0.1:4566/000/q"), undefined);
  assert.equal(regionFromQueueUrl("http://localhost:4566/000/q"), undefined);
  assert.equal(regionFromQueueUrl("not a url"), undefined);
});

Deno.test("sqs client: a visibility change on a stale handle: real SQS's texts are stale handles, row by row", () => {
  const rows: Array<[string, string, boolean]> = [
    [
      "InvalidParameterValue",
      "Value AQEBzW for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.",
      true,
    ],
    ["ReceiptHandleIsInvalid", 'The input receipt handle "x" is not a valid receipt handle.', true],
    ["MessageNotInflight", "", true],
    ["AWS.SimpleQueueService.MessageNotInflight", "", true],
    ["InvalidParameterValue", "Value 50000 for parameter VisibilityTimeout is invalid.", false],
    ["InvalidParameterValue", "Message must be shorter than 1048576 bytes.", false],
    ["ThrottlingException", "Rate exceeded", false],
  ];
  for (const [code, message, stale] of rows) {
    assert.equal(isStaleHandle(code, message), stale, `${code}: ${message}`);
  }
});

const SIGNATURE_BODY =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:sqs.us-east-1.amazonaws.com\nx-amz-security-token:IQoJb3JpZ2luX2VjEXAMPLETOKEN\n'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20250102T030405Z\n20250102/us-east-1/sqs/aws4_request\nabc'\n";

Deno.test("sqs client: AWS error messages are logged without the echoed canonical request or string to sign", async () => {
  assert.equal(
    scrubAwsText(SIGNATURE_BODY),
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
  );
  const xml =
    "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><StringToSign>AWS4-HMAC-SHA256 secret-ish</StringToSign><CanonicalRequest>POST /</CanonicalRequest></Error></ErrorResponse>";
  assert.doesNotMatch(scrubAwsText(xml), /AWS4-HMAC|CanonicalRequest|StringToSign/);
  await withFake({ queues: { work: {} } }, async (sqs) => {
    sqs.respond(
      "GetQueueAttributes",
      sqsError("SignatureDoesNotMatch", { status: 403, message: SIGNATURE_BODY }),
    );
    sqs.respond("GetQueueAttributes", {
      status: 403,
      body: xml,
      headers: { "content-type": "text/xml" },
    });
    const { client: c } = client({ endpoint: sqs.url });
    for (let i = 0; i < 2; i++) {
      const error = await rejects(c.getQueueAttributes(sqs.queueUrl("work"), ["All"]));
      assert.ok(error instanceof SqsError);
      assert.doesNotMatch(
        error.message,
        /Canonical|String-to-Sign|StringToSign|x-amz-security-token|AWS4-HMAC/,
      );
      assert.match(error.message, /signature we calculated does not match/);
    }
  });
});
