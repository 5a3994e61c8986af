import assert from "node:assert/strict";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";
import { S3Error } from "../../src/adapters/s3_client.ts";
import { POINTER_CLASS } from "../../src/domain/envelope.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import { Payloads, type PayloadSettings } from "../../src/flow/payloads.ts";
import { ByteBudget } from "../../src/lib/byte_budget.ts";
import { QUIET_LOGGER } from "../support/quiet_logger.ts";

const MESSAGE = '{"message_id":"m-1","user_id":"u","event_ts":1,"payload":{"k":1}}';
const SETTINGS: PayloadSettings = {
  sns: true,
  s3: true,
  maxBytes: 1000,
  deleteAccepted: false,
};

function sqsMessage(body: string, attributes: SqsMessage["messageAttributes"] = {}): SqsMessage {
  return {
    messageId: "s-1",
    receiptHandle: "r",
    body,
    attributes: {},
    messageAttributes: attributes,
  };
}

function payloads(getObject: (bucket: string, key: string) => Promise<string>, budget = 10_000) {
  const metrics = createSluiceMetrics();
  const ports = {
    getObject,
    deleteObject: () => Promise.resolve(),
    budget: new ByteBudget(budget),
  };
  return { p: new Payloads(SETTINGS, ports, { metrics, logger: QUIET_LOGGER }), metrics, ports };
}

const run = (fetch: () => Promise<string>) => fetch();
/** Unwrapped, then opened: the pipeline's two steps. */
const openIn = (p: Payloads, sqs: SqsMessage, runFetch: typeof run, abort: AbortSignal) =>
  p.open(sqs, p.unwrap(sqs), undefined, runFetch, abort);
const signal = new AbortController().signal;
const pointer = (key: string) => JSON.stringify([POINTER_CLASS, { s3BucketName: "b", s3Key: key }]);

Deno.test("payloads: an envelope's Message is the message and its attributes count", async () => {
  const { p } = payloads(() => Promise.reject(new Error("no fetch")));
  const body = JSON.stringify({
    Type: "Notification",
    MessageId: "n",
    TopicArn: "t",
    Message: MESSAGE,
    MessageAttributes: { traceparent: { Type: "String", Value: "00-a-b-01" } },
  });
  const opened = await openIn(p, sqsMessage(body), run, signal);
  assert.equal(opened.kind, "opened");
  if (opened.kind !== "opened") return;
  assert.equal(opened.parsed.ok && opened.parsed.message.message_id, "m-1");
  assert.deepEqual(opened.attributes, {
    traceparent: { DataType: "String", StringValue: "00-a-b-01" },
  });
});

Deno.test("payloads: a pointer's object is fetched within the budget and given back on release", async () => {
  const { p, ports, metrics } = payloads(() => Promise.resolve(MESSAGE));
  const opened = await openIn(
    p,
    sqsMessage(pointer("k"), { ExtendedPayloadSize: { DataType: "Number", StringValue: "500" } }),
    run,
    signal,
  );
  assert.equal(opened.kind, "opened");
  if (opened.kind !== "opened") return;
  assert.equal(opened.parsed.ok, true);
  assert.deepEqual(opened.pointer, { bucket: "b", key: "k", declaredBytes: 500 });
  assert.equal(ports.budget.used, MESSAGE.length, "held at its real size");
  opened.release();
  assert.equal(ports.budget.used, 0);
  assert.equal(metrics.payloadFetches.get({ result: "ok" }), 1);
});

Deno.test("payloads: a missing object is poison naming it; a 5xx past its retries is a transient s3 verdict", async () => {
  const missing = payloads(() =>
    Promise.reject(new S3Error("b", "k", "GetObject", "NoSuchKey", 404, "gone"))
  );
  const poison = await openIn(missing.p, sqsMessage(pointer("k")), run, signal);
  assert.equal(poison.kind, "opened");
  if (poison.kind === "opened") {
    assert.deepEqual(poison.parsed, {
      ok: false,
      reason: "S3 object s3://b/k not found (NoSuchKey, HTTP 404)",
    });
  }
  assert.equal(missing.ports.budget.used, 0, "nothing held after a failure");
  const failing = payloads(() =>
    Promise.reject(new S3Error("b", "k", "GetObject", "InternalError", 500, "boom"))
  );
  const transient = await openIn(failing.p, sqsMessage(pointer("k")), run, signal);
  assert.equal(transient.kind, "gave_up");
  if (transient.kind === "gave_up") {
    assert.equal(transient.verdict.kind, "gave_up");
    assert.deepEqual(
      transient.verdict.kind === "gave_up" &&
        [transient.verdict.target, transient.verdict.category],
      ["s3", "TRANSIENT"],
    );
  }
  assert.equal(failing.metrics.payloadFetches.get({ result: "error" }), 1);
});

Deno.test("payloads: mayWrap is false for a plain message; mayHide finds a reordered envelope", () => {
  const { p } = payloads(() => Promise.reject(new Error("no fetch")));
  assert.equal(p.mayWrap(sqsMessage(MESSAGE)), false);
  assert.equal(p.mayWrap(sqsMessage(pointer("k"))), true);
  const reordered = JSON.stringify({
    Message: MESSAGE,
    MessageId: "n",
    TopicArn: "t",
    Type: "Notification",
  });
  assert.equal(p.mayWrap(sqsMessage(reordered)), false);
  assert.equal(p.mayHide(sqsMessage(reordered)), true);
});

Deno.test("payloads: an object over the cap is poison with its size, or without one when none was sent", async () => {
  const { S3TooLargeError } = await import("../../src/adapters/s3_client.ts");
  for (
    const [bytes, reason] of [
      [5000, "S3 object s3://b/k is 5000 bytes, over S3_PAYLOAD_MAX_BYTES (1000)"],
      [undefined, "S3 object s3://b/k is over S3_PAYLOAD_MAX_BYTES (1000)"],
    ] as const
  ) {
    const { p } = payloads(() => Promise.reject(new S3TooLargeError("b", "k", bytes, 1000)));
    const opened = await openIn(p, sqsMessage(pointer("k")), run, signal);
    assert.deepEqual(opened.kind === "opened" && opened.parsed, { ok: false, reason });
  }
});
