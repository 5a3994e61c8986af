/**
 * Cross-checks SigV4 signing: ours (src/adapters/sigv4.ts, what SqsClient and DynamoDbClient use),
 * aws4fetch, the AWS SDK's @smithy/signature-v4 and the SQS proxy's own verifier must agree byte
 * for byte on the same requests.
 */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { AwsClient } from "aws4fetch";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";
import { SqsClient } from "../../src/adapters/sqs_client.ts";
import { SigningKeyCache, signRequest } from "../../src/adapters/sigv4.ts";
import { sigv4Signature } from "../../lab/sigv4_verifier.ts";

const T0 = Date.UTC(2025, 5, 30, 23, 59, 58);
const AMZ_DATE = "20250630T235958Z";
const KEYS = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};
const SESSION = {
  ...KEYS,
  sessionToken: "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJIMEYCIQ+/=",
};

interface Case {
  name: string;
  url: string;
  region: string;
  target: string;
  body: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

const CASES: Case[] = [
  {
    name: "ReceiveMessage, long-lived keys",
    url: "https://sqs.eu-west-1.amazonaws.com/",
    region: "eu-west-1",
    target: "AmazonSQS.ReceiveMessage",
    body: JSON.stringify({
      QueueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/work",
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 20,
      MessageAttributeNames: ["All"],
    }),
    credentials: KEYS,
  },
  {
    name: "SendMessage with a session token and non-ASCII JSON",
    url: "https://sqs.us-east-1.amazonaws.com/",
    region: "us-east-1",
    target: "AmazonSQS.SendMessage",
    body: JSON.stringify({
      QueueUrl: "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
      MessageBody: '{"user":"Zoë Ñandú","note":"naïve café 🌍 — 日本語","tab":"\t"}',
      MessageAttributes: { sluice_reason: { DataType: "String", StringValue: "ungültig: ß" } },
    }),
    credentials: SESSION,
  },
  {
    name: "an emulator endpoint with a port and an empty body",
    url: "http://127.0.0.1:4566/",
    region: "ap-southeast-2",
    target: "AmazonSQS.PurgeQueue",
    body: "",
    credentials: SESSION,
  },
];

async function signWithAws4fetch(c: Case): Promise<Request> {
  const aws = new AwsClient({ ...c.credentials, service: "sqs", region: c.region, retries: 0 });
  return await aws.sign(c.url, {
    method: "POST",
    headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": c.target },
    body: c.body,
    aws: { datetime: AMZ_DATE },
  });
}

async function signWithSmithy(c: Case, headers: Record<string, string>): Promise<string> {
  const url = new URL(c.url);
  const signer = new SignatureV4({
    credentials: c.credentials,
    region: c.region,
    service: "sqs",
    sha256: Sha256,
    // aws4fetch does not add x-amz-content-sha256 for SQS; neither does the SDK for SQS.
    applyChecksum: false,
  });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query: {},
    headers: { host: url.host, ...headers },
    body: c.body,
  }, {
    signingDate: new Date(T0),
    // aws4fetch never signs content-type; sign the same header set.
    unsignableHeaders: new Set(["content-type"]),
  });
  const auth = signed.headers["authorization"];
  assert.ok(typeof auth === "string");
  return auth;
}

for (const c of CASES) {
  Deno.test(`signing crosscheck: ours, aws4fetch and @smithy/signature-v4 agree: ${c.name}`, async () => {
    const request = await signWithAws4fetch(c);
    const fromAws4fetch = request.headers.get("authorization") ?? "";
    assert.equal(request.headers.get("x-amz-date"), AMZ_DATE);
    assert.equal(
      request.headers.get("x-amz-security-token"),
      c.credentials.sessionToken ?? null,
    );
    const fromSmithy = await signWithSmithy(c, {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": c.target,
    });
    assert.match(
      fromSmithy,
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20250630\/.+, Signature=[0-9a-f]{64}$/,
    );
    assert.equal(fromAws4fetch, fromSmithy);
    const { headers: ours } = signRequest({
      url: c.url,
      headers: { "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": c.target },
      body: c.body,
      keys: c.credentials,
      region: c.region,
      service: "sqs",
      amzDate: AMZ_DATE,
    }, new SigningKeyCache());
    assert.equal(ours["authorization"], fromAws4fetch);
    assert.equal(ours["host"], new URL(c.url).host);
    assert.equal(ours["x-amz-security-token"], c.credentials.sessionToken);

    // The SQS proxy's independent verifier computes the same signature.
    const m = /SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(fromAws4fetch);
    assert.ok(m);
    const fromProxy = await sigv4Signature({
      method: "POST",
      url: new URL(c.url),
      headers: request.headers,
      signedHeaders: (m[1] ?? "").split(";"),
      body: c.body,
      secretAccessKey: c.credentials.secretAccessKey,
      amzDate: AMZ_DATE,
      scope: `20250630/${c.region}/sqs/aws4_request`,
    });
    assert.equal(fromProxy, m[2]);
  });
}

Deno.test("signing crosscheck: the signature SqsClient sends equals the AWS SDK signer's", async () => {
  let sent: { url: string; headers: Headers; body: string } | undefined;
  const capture: typeof fetch = (input, init) => {
    sent = {
      url: String(input),
      headers: new Headers(init?.headers),
      body: String(init?.body ?? ""),
    };
    return Promise.resolve(Response.json({ MessageId: "m-1" }));
  };
  const client = new SqsClient({
    clock: { ...systemClock, now: () => T0 },
    region: "us-east-1",
    credentials: () => Promise.resolve(SESSION),
    fetch: capture,
  });
  const queueUrl = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq";
  await client.sendMessage(queueUrl, "naïve 🌍 body", { sluice_error: "VALIDATION" });
  assert.ok(sent);
  assert.equal(sent.url, "https://sqs.us-east-1.amazonaws.com/");
  const expected = await signWithSmithy(
    {
      name: "client",
      url: sent.url,
      region: "us-east-1",
      target: "AmazonSQS.SendMessage",
      body: sent.body,
      credentials: SESSION,
    },
    {
      "content-type": sent.headers.get("content-type") ?? "",
      "x-amz-target": sent.headers.get("x-amz-target") ?? "",
    },
  );
  assert.equal(sent.headers.get("authorization"), expected);
});

Deno.test("signing crosscheck: a path, a query and a rotated secret sign as aws4fetch does", async () => {
  const cache = new SigningKeyCache();
  const rows = [
    { url: "http://127.0.0.1:4566/000000000000/a%20queue", keys: KEYS },
    { url: "https://sqs.us-east-1.amazonaws.com/?b=2&a=x%2Fy&a=1", keys: KEYS },
    { url: "https://sqs.us-east-1.amazonaws.com/", keys: { ...KEYS, secretAccessKey: "rotated" } },
  ];
  for (const { url, keys } of rows) {
    const target = "AmazonSQS.ListQueues";
    const aws = new AwsClient({ ...keys, service: "sqs", region: "us-east-1", retries: 0 });
    const expected = await aws.sign(url, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": target },
      body: "{}",
      aws: { datetime: AMZ_DATE },
    });
    const { headers: ours } = signRequest({
      url,
      headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": target },
      body: "{}",
      keys,
      region: "us-east-1",
      service: "sqs",
      amzDate: AMZ_DATE,
    }, cache);
    assert.equal(ours["authorization"], expected.headers.get("authorization"), url);
  }
});
