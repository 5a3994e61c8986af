/**
 * What the AWS clients read of an answer: ReceiveMessage up to what ten 1 MiB messages can take
 * in JSON, every other answer up to 1 MiB, an error answer only as a prefix.
 */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { DynamoDbClient, DynamoDbError } from "../../src/adapters/dynamodb_client.ts";
import { SqsClient } from "../../src/adapters/sqs_client.ts";
import { SqsError } from "../../src/lib/errors.ts";
import { serveJson } from "../support/lab_env.ts";

const MiB = 1024 * 1024;
const KEYS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };

/** A streamed (chunked) body of `text`, so no Content-Length announces its size. */
function streamed(text: string, status = 200): Response {
  const bytes = new TextEncoder().encode(text);
  let sent = 0;
  return new Response(
    new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= bytes.length) return controller.close();
        controller.enqueue(bytes.subarray(sent, sent + 65536));
        sent += 65536;
      },
    }),
    { status, headers: { "content-type": "application/x-amz-json-1.0" } },
  );
}

/** Ten messages whose bodies are `each` characters. */
function receiveAnswer(each: number): string {
  const body = "q".repeat(each);
  const messages = Array.from({ length: 10 }, (_, i) => ({
    MessageId: `m-${i}`,
    ReceiptHandle: `h-${i}`,
    Body: body,
  }));
  return JSON.stringify({ Messages: messages });
}

async function withSqs(
  answer: (target: string) => Response,
  fn: (sqs: SqsClient, results: string[]) => Promise<void>,
) {
  const server = serveJson(async (request) => {
    await request.text();
    return answer(request.headers.get("x-amz-target") ?? "");
  });
  const results: string[] = [];
  try {
    await fn(
      new SqsClient({
        clock: systemClock,
        region: "us-east-1",
        endpoint: server.url,
        credentials: () => Promise.resolve(KEYS),
        onRequest: (action, result) => results.push(`${action} ${result}`),
      }),
      results,
    );
  } finally {
    await server.close();
  }
}

const receive = (sqs: SqsClient) =>
  sqs.receiveMessage({ queueUrl: "http://q/0/q", maxNumberOfMessages: 10, waitTimeSeconds: 0 });

Deno.test("aws answer caps: ten 1 MiB messages are received; an answer beyond what they can take is refused", async () => {
  let each = MiB;
  await withSqs(() => streamed(receiveAnswer(each)), async (sqs, results) => {
    const messages = await receive(sqs);
    assert.equal(messages.length, 10);
    assert.equal(messages[0]!.body.length, MiB);
    each = 4 * MiB;
    const error = await receive(sqs).then(() => undefined, (e) => e);
    assert.ok(error instanceof SqsError, `expected SqsError, got ${error}`);
    assert.equal(error.code, "ResponseTooLarge");
    assert.equal(error.retriable, true);
    assert.match(error.message, /answer longer than 33554432 bytes/);
    assert.deepEqual(results, ["ReceiveMessage ok", "ReceiveMessage too_large"]);
  });
});

Deno.test("aws answer caps: other SQS answers stop at 1 MiB; an error answer is read as a short prefix", async () => {
  await withSqs((target) => {
    if (target.endsWith("GetQueueAttributes")) {
      return streamed(JSON.stringify({ Attributes: { Policy: "p".repeat(2 * MiB) } }));
    }
    return streamed(
      JSON.stringify({ __type: "AccessDenied", message: "no ".repeat(MiB) }),
      400,
    );
  }, async (sqs, results) => {
    const big = await sqs.getQueueAttributes("http://q/0/q", ["All"]).then(() => 0, (e) => e);
    assert.ok(big instanceof SqsError && big.code === "ResponseTooLarge", String(big));
    assert.match(big.message, /answer longer than 1048576 bytes/);
    const denied = await sqs.getQueueUrl("q").then(() => 0, (e) => e);
    assert.ok(denied instanceof SqsError, String(denied));
    // 64 KiB of a 3 MiB JSON error is no JSON: the status names it, the text is capped.
    assert.equal(denied.code, "Http400");
    assert.ok(denied.message.length < 400, `${denied.message.length} characters`);
    assert.deepEqual(results, ["GetQueueAttributes too_large", "GetQueueUrl Http400"]);
  });
});

Deno.test("aws answer caps: a DynamoDB answer over 1 MiB is refused", async () => {
  const server = serveJson(async (request) => {
    await request.text();
    return streamed(JSON.stringify({ Item: { id: { S: "x".repeat(2 * MiB) } } }));
  });
  try {
    const dynamodb = new DynamoDbClient({
      clock: systemClock,
      region: "us-east-1",
      endpoint: `${server.url}/`,
      credentials: () => Promise.resolve(KEYS),
    });
    const error = await dynamodb.getItem("t", { id: { S: "x" } }).then(() => 0, (e) => e);
    assert.ok(error instanceof DynamoDbError, String(error));
    assert.equal(error.code, "ResponseTooLarge");
    assert.equal(error.retriable, true);
  } finally {
    await server.close();
  }
});
