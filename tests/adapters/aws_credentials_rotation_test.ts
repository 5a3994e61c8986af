/**
 * Shared-file credentials rotate under a running worker (a tool rewrites temporary keys with a
 * session token): the chain reads the file again every few minutes and after an ExpiredToken
 * answer, and the SQS and DynamoDB clients sign once more with what it finds.
 */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { credentialChain } from "../../src/adapters/aws_credentials.ts";
import { DynamoDbClient } from "../../src/adapters/dynamodb_client.ts";
import { SqsClient } from "../../src/adapters/sqs_client.ts";
import { createSqsClient } from "../../src/app/aws_clients.ts";
import { loadConfig } from "../../src/app/config.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { serveJson } from "../support/lab_env.ts";

const T0 = Date.UTC(2025, 0, 2, 3, 0, 0);
const noFetch: typeof fetch = () => Promise.reject(new Error("IMDS must not be called"));

/** A shared credentials file whose session keys the test rotates. */
function rotatingFile() {
  const file = { generation: 1, reads: 0, readable: true };
  const read = () => {
    file.reads++;
    if (!file.readable) return Promise.reject(new Error("ENOENT: being rewritten"));
    const g = file.generation;
    return Promise.resolve(
      `[default]\naws_access_key_id = ASIAGEN${g}\naws_secret_access_key = secret${g}\naws_session_token = token${g}\n`,
    );
  };
  return Object.assign(file, { read });
}

function chainOn(file: ReturnType<typeof rotatingFile>, clock?: FakeClock) {
  return credentialChain({
    env: { AWS_SHARED_CREDENTIALS_FILE: "/etc/sluice/credentials" },
    readTextFile: file.read,
    fetch: noFetch,
    clock: clock ?? systemClock,
  });
}

Deno.test("credential rotation: shared-file credentials are read again 5 minutes after the last read", async () => {
  const file = rotatingFile();
  const clock = new FakeClock({ start: T0 });
  const chain = chainOn(file, clock);
  assert.equal((await chain.get()).sessionToken, "token1");
  file.generation = 2;
  clock.set(T0 + 4 * 60_000);
  assert.equal((await chain.get()).sessionToken, "token1", "cached within 5 minutes");
  assert.equal(file.reads, 1);
  clock.set(T0 + 5 * 60_000 + 1);
  assert.equal((await chain.get()).sessionToken, "token2", "read again after 5 minutes");
  assert.equal(file.reads, 2);
  // A read that fails while the file is rewritten keeps the keys it had.
  file.readable = false;
  clock.set(T0 + 11 * 60_000);
  assert.equal((await chain.get()).sessionToken, "token2");
});

Deno.test("credential rotation: an ExpiredToken answer makes the next get read the file again, once", async () => {
  const file = rotatingFile();
  const chain = chainOn(file);
  const first = await chain.get();
  file.generation = 2;
  chain.expired(first);
  chain.expired(first);
  const [a, b] = await Promise.all([chain.get(), chain.get()]);
  assert.equal(a.sessionToken, "token2");
  assert.equal(b, a);
  assert.equal(file.reads, 2, "one read for many answers");
  chain.expired(first); // about keys no longer served: ignored
  assert.equal((await chain.get()).sessionToken, "token2");
  assert.equal(file.reads, 2);
  // Refused keys are not served again when the chain cannot find others.
  file.readable = false;
  chain.expired(a);
  await assert.rejects(chain.get(), /Cannot find AWS credentials/);
});

/** An endpoint that refuses `expiredToken` (token1) as expired and answers others with `ok`. */
function expiringEndpoint(expired: Response, ok: () => Response) {
  const tokens: Array<string | null> = [];
  const state = { expiredToken: "token1" };
  const server = serveJson(async (request) => {
    await request.text();
    const token = request.headers.get("x-amz-security-token");
    tokens.push(token);
    return token === state.expiredToken ? expired.clone() : ok();
  });
  return Object.assign(server, { tokens, state });
}

const EXPIRED = {
  __type: "com.amazon.coral.service#ExpiredTokenException",
  message: "The security token included in the request is expired",
};

Deno.test("credential rotation: SQS answering ExpiredToken is asked again with the rotated keys", async () => {
  const server = expiringEndpoint(
    Response.json(EXPIRED, {
      status: 403,
      headers: { "x-amzn-query-error": "ExpiredToken;Sender" },
    }),
    () => Response.json({ QueueUrl: "http://q/0/work" }),
  );
  const file = rotatingFile();
  const chain = chainOn(file);
  const results: string[] = [];
  try {
    const sqs = new SqsClient({
      clock: systemClock,
      region: "us-east-1",
      endpoint: server.url,
      credentials: () => chain.get(),
      credentialsExpired: (used) => chain.expired(used),
      onRequest: (action, result) => results.push(`${action} ${result}`),
    });
    await chain.get();
    file.generation = 2; // rotated on disk while the worker holds token1
    assert.equal(await sqs.getQueueUrl("work"), "http://q/0/work");
    assert.deepEqual(server.tokens, ["token1", "token2"]);
    assert.deepEqual(results, ["GetQueueUrl ExpiredTokenException", "GetQueueUrl ok"]);
    assert.equal(file.reads, 2);
  } finally {
    await server.close();
  }
});

/** A DynamoDB client on `chain`, wired to its ExpiredToken refresh as the worker's is. */
function dynamoDbOn(url: string, chain: ReturnType<typeof chainOn>): DynamoDbClient {
  return new DynamoDbClient({
    clock: systemClock,
    region: "us-east-1",
    endpoint: `${url}/`,
    credentials: () => chain.get(),
    credentialsExpired: (used) => chain.expired(used),
  });
}

Deno.test("credential rotation: DynamoDB answering ExpiredTokenException is asked again with the rotated keys", async () => {
  const server = expiringEndpoint(
    Response.json(EXPIRED, { status: 400 }),
    () => Response.json({ Item: { id: { S: "m-1" } } }),
  );
  const file = rotatingFile();
  const chain = chainOn(file);
  try {
    const dynamodb = dynamoDbOn(server.url, chain);
    await chain.get();
    file.generation = 2;
    assert.deepEqual(await dynamodb.getItem("t", { id: { S: "m-1" } }), { id: { S: "m-1" } });
    assert.deepEqual(server.tokens, ["token1", "token2"]);
  } finally {
    await server.close();
  }
});

Deno.test("credential rotation: keys that stay expired are refused after one more try", async () => {
  const server = expiringEndpoint(Response.json(EXPIRED, { status: 400 }), () => Response.json({}));
  const file = rotatingFile();
  const chain = chainOn(file);
  try {
    const dynamodb = dynamoDbOn(server.url, chain);
    await assert.rejects(dynamodb.getItem("t", { id: { S: "m-1" } }), /ExpiredTokenException/);
    assert.deepEqual(server.tokens, ["token1", "token1"], "the file was read again: still token1");
    assert.equal(file.reads, 2);
  } finally {
    await server.close();
  }
});

Deno.test("credential rotation: the worker's SQS client is wired to the chain's ExpiredToken refresh", async () => {
  const server = expiringEndpoint(
    Response.json(EXPIRED, { status: 403 }),
    () => Response.json({ QueueUrl: "http://q/0/work" }),
  );
  const file = rotatingFile();
  const env = {
    SQS_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/000000000000/work",
    AWS_ENDPOINT_URL_SQS: server.url,
    ENRICH_URL: "http://127.0.0.1:1",
    VALIDATOR_URL: "http://127.0.0.1:2",
    AWS_SHARED_CREDENTIALS_FILE: "/etc/sluice/credentials",
    AWS_EC2_METADATA_DISABLED: "true",
  };
  server.state.expiredToken = "none yet";
  try {
    const sqs = createSqsClient(loadConfig(env), {
      env,
      readTextFile: file.read,
      clock: systemClock,
    });
    assert.equal(await sqs.getQueueUrl("work"), "http://q/0/work");
    file.generation = 2;
    server.state.expiredToken = "token1";
    assert.equal(await sqs.getQueueUrl("work"), "http://q/0/work");
    assert.deepEqual(server.tokens, ["token1", "token1", "token2"]);
  } finally {
    await server.close();
  }
});
