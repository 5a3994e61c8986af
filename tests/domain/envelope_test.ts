import assert from "node:assert/strict";
import {
  envelopeAttributes,
  mayBeEnvelope,
  mayBeWrapped,
  type MessageAttributes,
  POINTER_CLASS,
  unwrapBody,
  type Unwrapped,
} from "../../src/domain/envelope.ts";

const ON = { sns: true, s3: true };
const MESSAGE = '{"message_id":"m-1","user_id":"u","event_ts":1,"payload":{}}';
const SIZE: MessageAttributes = { ExtendedPayloadSize: { DataType: "Number", StringValue: "42" } };
const LEGACY_SIZE: MessageAttributes = {
  SQSLargePayloadSize: { DataType: "Number", StringValue: "7" },
};
const pair = (fields: unknown) => JSON.stringify([POINTER_CLASS, fields]);
const envelope = (message: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    Type: "Notification",
    MessageId: "sns-1",
    TopicArn: "arn:aws:sns:us-east-1:000000000000:t",
    Message: message,
    ...extra,
  });

Deno.test("envelope: mayBeWrapped tells wrapped bodies by their first characters", () => {
  const rows: Array<[string, MessageAttributes, boolean]> = [
    [MESSAGE, {}, false],
    ['  {"message_id":"Type"}', {}, false],
    ['{"Types":1}', {}, false],
    ["", {}, false],
    ["not json", {}, false],
    [envelope(MESSAGE), {}, true],
    ['{\n  "Type" : "Notification"}', {}, true],
    [pair({ s3BucketName: "b", s3Key: "k" }), {}, true],
    [' \t["x"]', {}, true],
    ['{"s3BucketName":"b","s3Key":"k"}', {}, false],
    ['{"s3BucketName":"b","s3Key":"k"}', SIZE, true],
    ['{"s3BucketName":"b","s3Key":"k"}', LEGACY_SIZE, true],
  ];
  for (const [body, attributes, expected] of rows) {
    assert.equal(mayBeWrapped(body, attributes), expected, body);
  }
});

Deno.test("envelope: mayBeEnvelope finds an envelope whose keys came in another order", () => {
  assert.equal(
    mayBeEnvelope(JSON.stringify({ Message: MESSAGE, TopicArn: "t", Type: "Notification" })),
    true,
  );
  assert.equal(mayBeEnvelope('{"message_id":"m"}'), false);
});

Deno.test("envelope: unwrapBody, row by row", () => {
  const rows: Array<[string, string, MessageAttributes, typeof ON, Unwrapped]> = [
    ["a plain message", MESSAGE, {}, ON, { kind: "plain" }],
    ["an envelope", envelope(MESSAGE), {}, ON, { kind: "body", body: MESSAGE, attributes: {} }],
    ["an envelope with SNS off", envelope(MESSAGE), {}, { sns: false, s3: true }, {
      kind: "plain",
    }],
    [
      "a Type that is not Notification",
      envelope(MESSAGE, { Type: "SubscriptionConfirmation" }),
      {},
      ON,
      {
        kind: "plain",
      },
    ],
    ["an envelope without TopicArn", envelope(MESSAGE, { TopicArn: 1 }), {}, ON, { kind: "plain" }],
    ["a pointer pair", pair({ s3BucketName: "b", s3Key: "k/1" }), SIZE, ON, {
      kind: "pointer",
      pointer: { bucket: "b", key: "k/1", declaredBytes: 42 },
      attributes: SIZE,
      enveloped: false,
    }],
    ["a pointer pair without a size attribute", pair({ s3BucketName: "b", s3Key: "k" }), {}, ON, {
      kind: "pointer",
      pointer: { bucket: "b", key: "k", declaredBytes: undefined },
      attributes: {},
      enveloped: false,
    }],
    ["a legacy pointer", '{"s3BucketName":"b","s3Key":"k"}', LEGACY_SIZE, ON, {
      kind: "pointer",
      pointer: { bucket: "b", key: "k", declaredBytes: 7 },
      attributes: LEGACY_SIZE,
      enveloped: false,
    }],
    ["an unmarked legacy pointer", '{"s3BucketName":"b","s3Key":"k"}', {}, ON, { kind: "plain" }],
    [
      "a pair of another class",
      JSON.stringify(["x.Other", { s3BucketName: "b", s3Key: "k" }]),
      {},
      ON,
      {
        kind: "plain",
      },
    ],
    ["a pair without fields", JSON.stringify([POINTER_CLASS]), {}, ON, {
      kind: "poison",
      reason: "S3 pointer without its {s3BucketName, s3Key} object",
      attributes: {},
    }],
    ["a pair with an empty key", pair({ s3BucketName: "b", s3Key: "" }), {}, ON, {
      kind: "poison",
      reason: "S3 pointer without a non-empty string s3BucketName and s3Key",
      attributes: {},
    }],
    [
      "a pointer with S3 off",
      pair({ s3BucketName: "b", s3Key: "k" }),
      {},
      { sns: true, s3: false },
      {
        kind: "poison",
        reason: "body is an S3 pointer to s3://b/k and S3_PAYLOADS=off",
        attributes: {},
      },
    ],
    ["invalid JSON", "[not json", {}, ON, { kind: "plain" }],
  ];
  for (const [name, body, attributes, settings, expected] of rows) {
    assert.deepEqual(unwrapBody(body, attributes, settings), expected, name);
  }
});

Deno.test("envelope: a pointer inside an envelope is marked by the envelope's attributes", () => {
  const attributes = { ExtendedPayloadSize: { Type: "Number", Value: "99" } };
  const legacy = envelope('{"s3BucketName":"b","s3Key":"k"}', { MessageAttributes: attributes });
  assert.deepEqual(unwrapBody(legacy, {}, ON), {
    kind: "pointer",
    pointer: { bucket: "b", key: "k", declaredBytes: 99 },
    attributes: { ExtendedPayloadSize: { DataType: "Number", StringValue: "99" } },
    enveloped: true,
  });
  const unmarked = envelope('{"s3BucketName":"b","s3Key":"k"}');
  assert.equal(unwrapBody(unmarked, {}, ON).kind, "body");
  const paired = envelope(pair({ s3BucketName: "b", s3Key: "k" }));
  assert.equal(unwrapBody(paired, {}, ON).kind, "pointer");
});

Deno.test("envelope: the envelope's attributes count, beneath the SQS message's own", () => {
  const given = {
    MessageAttributes: {
      traceparent: { Type: "String", Value: "00-abc-def-01" },
      tenant: { Type: "String", Value: "from-sns" },
      blob: { Type: "Binary", Value: "AAEC" },
      broken: { Type: "String" },
    },
  };
  const own: MessageAttributes = { tenant: { DataType: "String", StringValue: "from-sqs" } };
  assert.deepEqual(envelopeAttributes(given, own), {
    traceparent: { DataType: "String", StringValue: "00-abc-def-01" },
    tenant: { DataType: "String", StringValue: "from-sqs" },
    blob: { DataType: "Binary", BinaryValue: "AAEC" },
  });
  assert.equal(envelopeAttributes({}, own), own, "no attributes: the SQS ones, not a copy");
});
