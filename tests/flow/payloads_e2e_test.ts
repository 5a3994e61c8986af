/**
 * SNS envelopes and S3 pointers end to end, in process: fauxqs serves SQS, SNS (a topic with an
 * SQS subscription, so envelopes have the real shape) and S3 on one endpoint; a proxy in front of
 * its S3 answers the faults it cannot (403, 5xx). Every DLQ copy is compared byte for byte with
 * the SQS body the queue held.
 */
import assert from "node:assert/strict";
import { createSnsS3Admin, pointerBody, type SnsS3Admin } from "../../lab/sns_s3_admin.ts";
import { serveLocal } from "../../lab/local_server.ts";
import { msg, startEnrichFake, startValidatorFake } from "../support/fault_kit.ts";
import { type LabEnv, runWorkerUntil, startLabEnv, waitFor } from "../support/lab_env.ts";

const BUCKET = "payloads";

interface PayloadLab {
  lab: LabEnv;
  s3: SnsS3Admin;
  topicArn: string;
  enrich: ReturnType<typeof startEnrichFake>;
  validator: ReturnType<typeof startValidatorFake>;
  env(overrides?: Record<string, string>): Record<string, string>;
}

async function withPayloadLab(fn: (rig: PayloadLab) => Promise<void>): Promise<void> {
  const lab = await startLabEnv();
  const enrich = startEnrichFake();
  const validator = startValidatorFake();
  try {
    const s3 = createSnsS3Admin(lab.endpoint);
    await s3.createBucket(BUCKET);
    const topicArn = await s3.createTopic(`events-${crypto.randomUUID().slice(0, 8)}`);
    const queueName = lab.queueUrl.slice(lab.queueUrl.lastIndexOf("/") + 1);
    await s3.subscribeQueue(topicArn, `arn:aws:sqs:us-east-1:000000000000:${queueName}`);
    const urls = { enrich: enrich.url, validator: validator.url };
    const env = (overrides: Record<string, string> = {}) =>
      lab.env(urls, { AWS_ENDPOINT_URL_S3: lab.endpoint, ...overrides });
    await fn({ lab, s3, topicArn, enrich, validator, env });
  } finally {
    await enrich.close();
    await validator.close();
    await lab.close();
  }
}

/** Sends one body straight to the queue, with String/Number message attributes. */
async function sendRaw(lab: LabEnv, body: string, attributes: Record<string, string> = {}) {
  const MessageAttributes = Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      { DataType: /^\d+$/.test(value) ? "Number" : "String", StringValue: value },
    ]),
  );
  await lab.admin.call("SendMessage", {
    QueueUrl: lab.queueUrl,
    MessageBody: body,
    ...(Object.keys(MessageAttributes).length ? { MessageAttributes } : {}),
  });
}

/** The bodies on the main queue now, looked at without taking them (visibility 0). */
async function peekBodies(lab: LabEnv, count: number): Promise<string[]> {
  const seen = new Map<string, string>();
  await waitFor(async () => {
    const answer = await lab.admin.call<{ Messages?: Array<{ MessageId: string; Body: string }> }>(
      "ReceiveMessage",
      { QueueUrl: lab.queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 },
    );
    for (const m of answer.Messages ?? []) seen.set(m.MessageId, m.Body);
    return seen.size >= count;
  }, `${count} messages on the queue`);
  return [...seen.values()];
}

type Shape = "body" | "pointer" | "legacy pointer" | "missing pointer";

/** Puts the message behind `shape` where it belongs; the body and attributes to send. */
async function prepare(rig: PayloadLab, shape: Shape, id: string) {
  const message = msg(id);
  if (shape === "body") return { body: message, attributes: {} };
  const legacy = shape === "legacy pointer";
  const key = `in/${id}.json`;
  if (shape !== "missing pointer") await rig.s3.putObject(BUCKET, key, message);
  const size = { [legacy ? "SQSLargePayloadSize" : "ExtendedPayloadSize"]: String(message.length) };
  return { body: pointerBody(BUCKET, key, legacy), attributes: size };
}

async function deliver(
  rig: PayloadLab,
  via: "raw" | "SNS",
  body: string,
  attrs: Record<string, string>,
) {
  if (via === "raw") await sendRaw(rig.lab, body, attrs);
  else await rig.s3.publish(rig.topicArn, body, attrs);
}

for (const via of ["raw", "SNS"] as const) {
  for (const shape of ["body", "pointer", "legacy pointer"] as const) {
    Deno.test(`payloads: a ${shape} sent ${via} is accepted as its message`, async () => {
      await withPayloadLab(async (rig) => {
        const { body, attributes } = await prepare(rig, shape, "m-1");
        await deliver(rig, via, body, attributes);
        const worker = await runWorkerUntil(
          rig.env(),
          () => rig.validator.accepted.size === 1,
          "the message accepted",
        );
        assert.equal(rig.validator.docs[0]?.message_id, "m-1");
        assert.deepEqual(rig.validator.docs[0]?.payload, {});
        assert.equal(await rig.lab.depth(), 0, "deleted from the queue");
        assert.deepEqual(await rig.lab.drainDlq(), []);
        const fetched = shape === "body" ? 0 : 1;
        assert.equal(worker.metrics.payloadFetches.get({ result: "ok" }), fetched);
      });
    });
  }

  Deno.test(`payloads: a pointer sent ${via} to a missing object is dead-lettered byte for byte, naming bucket and key`, async () => {
    await withPayloadLab(async (rig) => {
      const { body, attributes } = await prepare(rig, "missing pointer", "m-2");
      await deliver(rig, via, body, attributes);
      const [original] = await peekBodies(rig.lab, 1);
      if (via === "SNS") assert.equal(JSON.parse(original!).Type, "Notification");
      let dlq: Awaited<ReturnType<LabEnv["drainDlq"]>> = [];
      const worker = await runWorkerUntil(rig.env(), async () => {
        dlq = dlq.concat(await rig.lab.drainDlq());
        return dlq.length === 1;
      }, "the DLQ copy");
      assert.equal(dlq[0]!.body, original, "the DLQ copy is the SQS body byte for byte");
      assert.equal(dlq[0]!.error, "VALIDATION");
      assert.match(
        dlq[0]!.reason!,
        /s3:\/\/payloads\/in\/m-2\.json not found \(NoSuchKey, HTTP 404\)/,
      );
      assert.equal(rig.validator.accepted.size, 0);
      assert.equal(worker.metrics.payloadFetches.get({ result: "not_found" }), 1);
    });
  });
}

Deno.test("payloads: a poison message inside an SNS envelope is dead-lettered as the envelope, with the inner reason", async () => {
  await withPayloadLab(async (rig) => {
    await rig.s3.publish(rig.topicArn, JSON.stringify({ message_id: "p-1", event_ts: 1 }));
    const [original] = await peekBodies(rig.lab, 1);
    let dlq: Awaited<ReturnType<LabEnv["drainDlq"]>> = [];
    await runWorkerUntil(rig.env(), async () => {
      dlq = dlq.concat(await rig.lab.drainDlq());
      return dlq.length === 1;
    }, "the DLQ copy");
    assert.equal(dlq[0]!.body, original);
    assert.equal(dlq[0]!.reason, "user_id is missing");
  });
});

Deno.test("payloads: with SNS_ENVELOPE=off an envelope is poison, as before", async () => {
  await withPayloadLab(async (rig) => {
    await rig.s3.publish(rig.topicArn, msg("m-3"));
    let dlq: Awaited<ReturnType<LabEnv["drainDlq"]>> = [];
    await runWorkerUntil(rig.env({ SNS_ENVELOPE: "off" }), async () => {
      dlq = dlq.concat(await rig.lab.drainDlq());
      return dlq.length === 1;
    }, "the DLQ copy");
    assert.equal(dlq[0]!.reason, "message_id is missing");
    assert.equal(rig.validator.accepted.size, 0);
  });
});

/**
 * A proxy in front of fauxqs's S3: `answer` may reply to a GET itself (a fault); anything else
 * is forwarded. Counts the GETs it saw.
 */
function s3Proxy(
  target: string,
  answer: (path: string, n: number) => Response | undefined | Promise<Response | undefined>,
) {
  let gets = 0;
  const server = serveLocal(async (request) => {
    const url = new URL(request.url);
    if (request.method === "GET") {
      const faulty = await answer(url.pathname, ++gets);
      if (faulty) return faulty;
    }
    const body = request.method === "GET" || request.method === "HEAD"
      ? undefined
      : await request.arrayBuffer();
    const forwarded = await fetch(`${target}${url.pathname}${url.search}`, {
      method: request.method,
      ...(body ? { body } : {}),
    });
    return new Response(await forwarded.arrayBuffer(), {
      status: forwarded.status,
      headers: forwarded.headers,
    });
  });
  return Object.assign(server, { gets: () => gets });
}

const s3Error = (status: number, code: string) =>
  new Response(`<?xml version="1.0"?><Error><Code>${code}</Code><Message>m</Message></Error>`, {
    status,
    headers: { "content-type": "application/xml" },
  });

Deno.test("payloads: a pointer to an object S3 refuses (403) is dead-lettered naming bucket and key", async () => {
  await withPayloadLab(async (rig) => {
    const proxy = s3Proxy(rig.lab.endpoint, () => s3Error(403, "AccessDenied"));
    try {
      const { body, attributes } = await prepare(rig, "pointer", "m-4");
      await sendRaw(rig.lab, body, attributes);
      let dlq: Awaited<ReturnType<LabEnv["drainDlq"]>> = [];
      await runWorkerUntil(rig.env({ AWS_ENDPOINT_URL_S3: proxy.url }), async () => {
        dlq = dlq.concat(await rig.lab.drainDlq());
        return dlq.length === 1;
      }, "the DLQ copy");
      assert.equal(dlq[0]!.body, body);
      assert.equal(dlq[0]!.reason, "S3 refused s3://payloads/in/m-4.json (AccessDenied, HTTP 403)");
      assert.equal(proxy.gets(), 1, "a refusal is not retried");
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("payloads: an S3 5xx burst is retried in process, then the message is accepted and nothing is dead-lettered", async () => {
  await withPayloadLab(async (rig) => {
    const proxy = s3Proxy(
      rig.lab.endpoint,
      (_path, n) => n <= 3 ? s3Error(503, "SlowDown") : undefined,
    );
    try {
      const { body, attributes } = await prepare(rig, "pointer", "m-5");
      await sendRaw(rig.lab, body, attributes);
      const worker = await runWorkerUntil(
        rig.env({ AWS_ENDPOINT_URL_S3: proxy.url }),
        () => rig.validator.accepted.size === 1,
        "the message accepted",
      );
      assert.equal(proxy.gets(), 4);
      assert.deepEqual(await rig.lab.drainDlq(), []);
      assert.equal(worker.metrics.retries.get({ target: "s3" }), 3);
      assert.equal(worker.metrics.payloadFetches.get({ result: "ok" }), 1);
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("payloads: while S3 keeps failing the message is released, never dead-lettered, and /readyz names the s3 breaker", async () => {
  await withPayloadLab(async (rig) => {
    const proxy = s3Proxy(rig.lab.endpoint, () => s3Error(500, "InternalError"));
    try {
      for (const id of ["a", "b", "c", "d", "e", "f"]) {
        const { body, attributes } = await prepare(rig, "pointer", id);
        await sendRaw(rig.lab, body, attributes);
      }
      let ready: Record<string, unknown> = {};
      await runWorkerUntil(
        rig.env({
          AWS_ENDPOINT_URL_S3: proxy.url,
          SQS_VISIBILITY_TIMEOUT_SECONDS: "2",
          SHUTDOWN_GRACE_SECONDS: "1",
        }),
        async (worker) => {
          const answer = await worker.app.request("/readyz");
          ready = await answer.json();
          return answer.status === 503 && JSON.stringify(ready).includes("s3");
        },
        "/readyz to report the s3 breaker",
      );
      assert.match(JSON.stringify(ready), /s3 circuit breaker is open/);
      assert.deepEqual(await rig.lab.drainDlq(), []);
      assert.equal(rig.validator.accepted.size, 0);
      assert.equal(await rig.lab.depth(), 6, "every message still on the queue");
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("payloads: an object over S3_PAYLOAD_MAX_BYTES is dead-lettered with its size, unread", async () => {
  await withPayloadLab(async (rig) => {
    const big = msg("m-6", "u-6", { pad: "x".repeat(5000) });
    await rig.s3.putObject(BUCKET, "big.json", big);
    const body = pointerBody(BUCKET, "big.json");
    await sendRaw(rig.lab, body, { ExtendedPayloadSize: String(big.length) });
    let dlq: Awaited<ReturnType<LabEnv["drainDlq"]>> = [];
    const worker = await runWorkerUntil(rig.env({ S3_PAYLOAD_MAX_BYTES: "4096" }), async () => {
      dlq = dlq.concat(await rig.lab.drainDlq());
      return dlq.length === 1;
    }, "the DLQ copy");
    assert.equal(dlq[0]!.body, body);
    assert.equal(
      dlq[0]!.reason,
      `S3 object s3://payloads/big.json is ${big.length} bytes, over S3_PAYLOAD_MAX_BYTES (4096)`,
    );
    assert.equal(worker.metrics.payloadFetches.get({ result: "too_large" }), 1);
  });
});

Deno.test("payloads: S3_PAYLOAD_DELETE=true deletes the object once its message is accepted", async () => {
  await withPayloadLab(async (rig) => {
    const { body, attributes } = await prepare(rig, "pointer", "m-7");
    await sendRaw(rig.lab, body, attributes);
    await runWorkerUntil(
      rig.env({ S3_PAYLOAD_DELETE: "true" }),
      () => rig.validator.accepted.size === 1,
      "the message accepted",
    );
    await waitFor(async () => {
      const answer = await fetch(`${rig.lab.endpoint}/${BUCKET}/in/m-7.json`);
      await answer.body?.cancel();
      return answer.status === 404;
    }, "the object deleted");
  });
});

Deno.test("payloads: fetched bytes in flight stay within S3_PAYLOAD_BUDGET_BYTES; the rest wait", async () => {
  await withPayloadLab(async (rig) => {
    let inFlight = 0, most = 0;
    const proxy = s3Proxy(rig.lab.endpoint, async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 30));
      inFlight--;
      return undefined;
    });
    try {
      const ids = ["a", "b", "c", "d", "e", "f"];
      for (const id of ids) {
        await rig.s3.putObject(BUCKET, id, msg(id));
        // Declared at 600 kB: two do not fit a 1 MiB budget together.
        await sendRaw(rig.lab, pointerBody(BUCKET, id), { ExtendedPayloadSize: "600000" });
      }
      await runWorkerUntil(
        rig.env({ AWS_ENDPOINT_URL_S3: proxy.url, S3_PAYLOAD_BUDGET_BYTES: "1048576" }),
        () => rig.validator.accepted.size === ids.length,
        "every message accepted",
      );
      assert.equal(proxy.gets(), ids.length);
      assert.equal(most, 1, "one fetch at a time");
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("payloads: an envelope whose keys were reordered is still unwrapped", async () => {
  await withPayloadLab(async (rig) => {
    const body = JSON.stringify({
      Message: msg("m-8"),
      MessageId: "n-1",
      TopicArn: rig.topicArn,
      Type: "Notification",
    });
    await sendRaw(rig.lab, body);
    await runWorkerUntil(
      rig.env(),
      () => rig.validator.accepted.size === 1,
      "the message accepted",
    );
    assert.equal(rig.validator.docs[0]?.message_id, "m-8");
  });
});
