/**
 * No AWS request follows a redirect: an SQS or DynamoDB endpoint answering 307, or an instance
 * metadata service answering 302, is a failure naming the Location, and the redirect's target
 * never sees the signed headers (the session token among them) nor has its 200 taken as the
 * answer. Real loopback servers, so the runtime's own fetch is what would follow.
 */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { credentialChain } from "../../src/adapters/aws_credentials.ts";
import { DynamoDbClient, DynamoDbError } from "../../src/adapters/dynamodb_client.ts";
import { SqsClient } from "../../src/adapters/sqs_client.ts";
import { SqsError } from "../../src/lib/errors.ts";
import { serveJson } from "../support/lab_env.ts";

const KEYS = {
  accessKeyId: "ASIAEXAMPLEREDIRECT1",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  sessionToken: "IQoJb3JpZ2luX2VjEXAMPLE-SESSION-TOKEN",
};

/** The redirect's target: records what reached it, answers like the real service would. */
function target(answer: (path: string) => Response) {
  const seen: Array<{ method: string; path: string; token: string | null }> = [];
  const server = serveJson(async (request, url) => {
    await request.text();
    seen.push({
      method: request.method,
      path: url.pathname,
      token: request.headers.get("x-amz-security-token"),
    });
    return answer(url.pathname);
  });
  return Object.assign(server, { seen });
}

/** Answers every request with `status` and a Location at `to` (plus the request's path). */
function redirecting(status: number, to: string) {
  return serveJson(async (request, url) => {
    await request.text();
    return new Response("", { status, headers: { location: `${to}${url.pathname}` } });
  });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return await p.then(() => assert.fail("expected a rejection"), (error) => error);
}

Deno.test("aws redirects: an SQS endpoint answering 307 is an SqsError naming the Location; its target gets nothing", async () => {
  const evil = target(() =>
    Response.json({ Messages: [{ MessageId: "x", ReceiptHandle: "h", Body: "{}" }] })
  );
  const endpoint = redirecting(307, evil.url);
  const results: string[] = [];
  try {
    const sqs = new SqsClient({
      clock: systemClock,
      region: "us-east-1",
      endpoint: endpoint.url,
      credentials: () => Promise.resolve(KEYS),
      onRequest: (action, result) => results.push(`${action} ${result}`),
    });
    const error = await rejection(sqs.receiveMessage({
      queueUrl: `${endpoint.url}/000000000000/work`,
      maxNumberOfMessages: 10,
      waitTimeSeconds: 0,
    }));
    assert.ok(error instanceof SqsError, `expected SqsError, got ${error}`);
    assert.equal(error.code, "Redirect");
    assert.equal(error.status, 307);
    assert.ok(error.message.includes(`Location ${evil.url}/`), error.message);
    assert.doesNotMatch(error.message, /SESSION-TOKEN/);
    assert.equal(error.retriable, true, "a failed call, retried with backoff like an outage");
    assert.deepEqual(evil.seen, [], "the redirect was not followed");
    assert.deepEqual(results, ["ReceiveMessage redirect"]);
  } finally {
    await endpoint.close();
    await evil.close();
  }
});

Deno.test("aws redirects: a DynamoDB endpoint answering 307 is a DynamoDbError naming the Location; its target gets nothing", async () => {
  const evil = target(() => Response.json({ Item: { id: { S: "m-1" }, status: { S: "DONE" } } }));
  const endpoint = redirecting(307, evil.url);
  const results: string[] = [];
  try {
    const dynamodb = new DynamoDbClient({
      clock: systemClock,
      region: "us-east-1",
      endpoint: `${endpoint.url}/`,
      credentials: () => Promise.resolve(KEYS),
      onRequest: (action, result) => results.push(`${action} ${result}`),
    });
    const error = await rejection(dynamodb.getItem("t", { id: { S: "m-1" } }));
    assert.ok(error instanceof DynamoDbError, `expected DynamoDbError, got ${error}`);
    assert.equal(error.code, "Redirect");
    assert.equal(error.status, 307);
    assert.ok(error.message.includes(`Location ${evil.url}/`), error.message);
    assert.deepEqual(evil.seen, [], "the redirect was not followed");
    assert.deepEqual(results, ["GetItem redirect"]);
  } finally {
    await endpoint.close();
    await evil.close();
  }
});

/** A credentials document as IMDS serves it. */
const document = (key: string) =>
  Response.json({
    Code: "Success",
    AccessKeyId: key,
    SecretAccessKey: `secret-${key}`,
    Token: `token-${key}`,
    Expiration: "2999-01-01T00:00:00Z",
  });

const STAGES = [
  "/latest/api/token",
  "/latest/meta-data/iam/security-credentials/",
  "/latest/meta-data/iam/security-credentials/role",
];

for (const stage of STAGES) {
  Deno.test(`aws redirects: IMDS redirecting ${stage} yields no credentials from the redirect's target`, async () => {
    const evil = target((path) => {
      if (path === STAGES[0]) return new Response("evil-token");
      if (path === STAGES[1]) return new Response("role");
      return document("ASIAEVIL");
    });
    // The real IMDS answers every stage but `stage`, which it redirects to the same path there.
    const imds = serveJson(async (request, url) => {
      await request.text();
      if (url.pathname === stage) {
        return new Response("", { status: 302, headers: { location: `${evil.url}${stage}` } });
      }
      if (url.pathname === STAGES[0]) return new Response("imds-token");
      if (url.pathname === STAGES[1]) return new Response("role");
      return document("ASIAREAL");
    });
    try {
      const chain = credentialChain({
        clock: systemClock,
        env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url },
      });
      const error = await rejection(chain.get());
      assert.ok(error instanceof Error);
      assert.match(error.message, /Cannot find AWS credentials/);
      assert.ok(
        error.message.includes(`redirected to ${evil.url}${stage} (not followed)`),
        error.message,
      );
      assert.deepEqual(evil.seen, [], "the redirect was not followed");
    } finally {
      await imds.close();
      await evil.close();
    }
  });
}
