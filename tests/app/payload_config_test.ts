import assert from "node:assert/strict";
import { collectConfigProblems, loadConfig } from "../../src/app/config.ts";
import { ConfigError } from "../../src/lib/errors.ts";

const base = {
  SQS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
  ENRICH_URL: "http://10.0.0.5:9102/",
  VALIDATOR_URL: "http://10.0.0.5:9200",
};

function failure(env: Record<string, string>): string {
  try {
    loadConfig({ ...base, ...env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error.message;
  }
  assert.fail("expected loadConfig to throw");
}

Deno.test("payload config: the defaults unwrap envelopes and fetch pointers, up to 32 MiB each and 32 MiB at once", () => {
  assert.deepEqual(loadConfig(base).payloads, {
    sns: true,
    s3: true,
    s3Endpoint: undefined,
    maxBytes: 33554432,
    deleteAccepted: false,
    budgetBytes: 33554432,
  });
});

Deno.test("payload config: each variable is read, the S3 endpoint falling back to AWS_ENDPOINT_URL", () => {
  const config = loadConfig({
    ...base,
    SNS_ENVELOPE: "OFF",
    S3_PAYLOAD_MAX_BYTES: "1000",
    S3_PAYLOAD_DELETE: "yes",
    S3_PAYLOAD_BUDGET_BYTES: "2097152",
    AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
  });
  assert.deepEqual(config.payloads, {
    sns: false,
    s3: true,
    s3Endpoint: "http://127.0.0.1:4566",
    maxBytes: 1000,
    deleteAccepted: true,
    budgetBytes: 2097152,
  });
  const own = loadConfig({
    ...base,
    AWS_ENDPOINT_URL: "http://127.0.0.1:4566",
    AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000",
  });
  assert.equal(own.payloads.s3Endpoint, "http://127.0.0.1:9000");
});

Deno.test("payload config: a bad value is one line naming the variable, the value and what is allowed", () => {
  const rows: Array<[Record<string, string>, string]> = [
    [{ SNS_ENVELOPE: "yes" }, 'Cannot parse SNS_ENVELOPE: received "yes", expected auto or off'],
    [{ S3_PAYLOADS: "on" }, 'Cannot parse S3_PAYLOADS: received "on", expected auto or off'],
    [
      { S3_PAYLOAD_MAX_BYTES: "32MB" },
      'Cannot parse S3_PAYLOAD_MAX_BYTES: received "32MB", expected an integer 1-536870912',
    ],
    [
      { S3_PAYLOAD_BUDGET_BYTES: "1000" },
      'Cannot parse S3_PAYLOAD_BUDGET_BYTES: received "1000", expected an integer 1048576-4294967296',
    ],
    [
      { S3_PAYLOAD_DELETE: "true", S3_PAYLOADS: "off" },
      'Cannot use S3_PAYLOAD_DELETE: received "true", expected false while S3_PAYLOADS=off (no object is fetched, so none is deleted)',
    ],
    [
      { AWS_ENDPOINT_URL_S3: "http://s3.example.com" },
      'Cannot use AWS_ENDPOINT_URL_S3: received "http://s3.example.com", expected an https:// URL (plain http is allowed only on loopback, or with AWS_ALLOW_HTTP_ENDPOINT=true: requests and the session token would travel in clear)',
    ],
  ];
  for (const [env, message] of rows) assert.equal(failure(env), message);
});

Deno.test("payload config: check-config collects every payload problem at once", () => {
  const { problems } = collectConfigProblems({
    ...base,
    SNS_ENVELOPE: "x",
    S3_PAYLOAD_MAX_BYTES: "-1",
  });
  assert.equal(problems.length, 2);
});
