/**
 * One scrubber for every AWS error text: what SQS, DynamoDB and the instance metadata service
 * send back reaches errors and logs without echoed requests, tokens or signatures.
 */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { scrubAwsText } from "../../src/adapters/aws_error_text.ts";
import { credentialChain } from "../../src/adapters/aws_credentials.ts";
import { DynamoDbClient, DynamoDbError } from "../../src/adapters/dynamodb_client.ts";
import { SqsClient } from "../../src/adapters/sqs_client.ts";
import { SqsError } from "../../src/lib/errors.ts";
import { serveJson } from "../support/lab_env.ts";

const TOKEN = `IQoJb3JpZ2luX2VjE${"A1b2C3d4".repeat(40)}/+Z=`;
const SIGNATURE = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

/** DynamoDB's InvalidSignatureException: the canonical request, session token and all. */
const DYNAMO_SIGNATURE_MESSAGE =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n" +
  "The canonical String for this request should have been\n'POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:dynamodb.us-east-1.amazonaws.com\n" +
  `x-amz-date:20260102T030405Z\nx-amz-security-token:${TOKEN}\nx-amz-target:DynamoDB_20120810.GetItem\n\n` +
  "content-type;host;x-amz-date;x-amz-security-token;x-amz-target\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'\n\n" +
  "The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260102T030405Z\n20260102/us-east-1/dynamodb/aws4_request\nabc'";

Deno.test("aws error text: scrubAwsText row by row", () => {
  const rows: Array<[string, string]> = [
    ["Rate exceeded", "Rate exceeded"],
    [
      "The request signature we calculated does not match.\n\nThe Canonical String for this request should have been 'POST ...'",
      "The request signature we calculated does not match.",
    ],
    [
      "The request signature we calculated does not match.\n\nThe canonical String for this request should have been 'POST ...'",
      "The request signature we calculated does not match.",
    ],
    [
      `proxy echoed x-amz-security-token: ${TOKEN} and more`,
      "proxy echoed x-amz-security-token=<redacted> and more",
    ],
    [
      `Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/sqs/aws4_request, Signature=${SIGNATURE}`,
      "Authorization=<redacted> Credential=<redacted>, Signature=<redacted>",
    ],
    [`a bare token ${TOKEN} in a message`, "a bare token <redacted> in a message"],
    [`a bare signature ${SIGNATURE}.`, "a bare signature <redacted>."],
    ["two\nlines\r\n\tand tabs", "two lines and tabs"],
    ["x".repeat(400), "<redacted>"],
    ["word ".repeat(100), `${"word ".repeat(60)}…`],
  ];
  for (const [input, expected] of rows) {
    assert.equal(scrubAwsText(input), expected, input.slice(0, 60));
  }
});

Deno.test("aws error text: DynamoDB's InvalidSignatureException keeps its first sentence, never the session token", async () => {
  const server = serveJson(async (request) => {
    await request.text();
    return Response.json({
      __type: "com.amazon.coral.service#InvalidSignatureException",
      message: DYNAMO_SIGNATURE_MESSAGE,
    }, { status: 400 });
  });
  try {
    const dynamodb = new DynamoDbClient({
      clock: systemClock,
      region: "us-east-1",
      endpoint: `${server.url}/`,
      credentials: () =>
        Promise.resolve({ accessKeyId: "ASIAEXAMPLE", secretAccessKey: "s", sessionToken: TOKEN }),
    });
    const error = await dynamodb.getItem("t", { id: { S: "x" } }).then(() => 0, (e) => e);
    assert.ok(error instanceof DynamoDbError, String(error));
    assert.equal(error.code, "InvalidSignatureException");
    assert.equal(
      error.message,
      "DynamoDB GetItem failed: InvalidSignatureException: The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details. (HTTP 400)",
    );
  } finally {
    await server.close();
  }
});

Deno.test("aws error text: SQS error answers and batch entries are scrubbed the same way", async () => {
  const server = serveJson(async (request) => {
    await request.text();
    if (request.headers.get("x-amz-target")?.endsWith("DeleteMessageBatch")) {
      return Response.json({
        Successful: [],
        Failed: [{ Id: "0", Code: "X", SenderFault: true, Message: `echo ${TOKEN}` }],
      });
    }
    return Response.json({
      __type: "com.amazonaws.sqs#SignatureDoesNotMatch",
      message: DYNAMO_SIGNATURE_MESSAGE,
    }, { status: 403 });
  });
  try {
    const sqs = new SqsClient({
      clock: systemClock,
      region: "us-east-1",
      endpoint: server.url,
      credentials: () => Promise.resolve({ accessKeyId: "A", secretAccessKey: "s" }),
    });
    const error = await sqs.getQueueUrl("q").then(() => 0, (e) => e);
    assert.ok(error instanceof SqsError, String(error));
    assert.doesNotMatch(error.message, /IQoJ|canonical|String-to-Sign/i);
    const batch = await sqs.deleteMessageBatch("http://q/0/q", [{ id: "0", receiptHandle: "h" }]);
    assert.equal(batch.failed[0]!.message, "echo <redacted>");
  } finally {
    await server.close();
  }
});

Deno.test("aws error text: an instance metadata error document is scrubbed before it joins the chain's error", async () => {
  const imds = serveJson(async (request, url) => {
    await request.text();
    if (url.pathname === "/latest/api/token") return new Response("t");
    if (url.pathname.endsWith("/security-credentials/")) return new Response("role");
    return Response.json({ Code: "AssumeRoleUnauthorizedAccess", Message: `echo ${TOKEN}` });
  });
  try {
    const chain = credentialChain({
      clock: systemClock,
      env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url },
    });
    const error = await chain.get().then(() => 0, (e) => e);
    assert.ok(error instanceof Error);
    assert.ok(
      error.message.includes("(role role: AssumeRoleUnauthorizedAccess echo <redacted>)"),
      error.message,
    );
  } finally {
    await imds.close();
  }
});
