/** The DynamoDB client with a fake fetch: the wire format, the signature's scope, error mapping. */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import {
  DynamoDbClient,
  dynamoDbEndpoint,
  DynamoDbError,
} from "../../src/adapters/dynamodb_client.ts";
import { isRetriable } from "../../src/lib/errors.ts";

function client(answer: (request: Request) => Response | Promise<Response>) {
  const requests: Request[] = [];
  const results: string[] = [];
  const c = new DynamoDbClient({
    clock: { ...systemClock, now: () => Date.UTC(2026, 0, 2, 3, 4, 5) },
    region: "eu-west-1",
    credentials: () => Promise.resolve({ accessKeyId: "AKID", secretAccessKey: "secret" }),
    fetch: (input, init) => {
      const request = new Request(input, init);
      requests.push(request.clone());
      return Promise.resolve(answer(request));
    },
    onRequest: (action, result) => results.push(`${action} ${result}`),
  });
  return { c, requests, results };
}

const error = (type: string, status = 400, message = "m") =>
  new Response(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message }), {
    status,
    headers: { "content-type": "application/x-amz-json-1.0" },
  });

Deno.test("dynamodb client: dynamodb: JSON 1.0 with X-Amz-Target, signed for the dynamodb service, regional endpoint", async () => {
  const { c, requests, results } = client(() =>
    Response.json({ Item: { id: { S: "m-1" }, status: { S: "COMPLETED" } } })
  );
  const item = await c.getItem("t-1", { id: { S: "m-1" } }, { consistentRead: true });
  assert.deepEqual(item, { id: { S: "m-1" }, status: { S: "COMPLETED" } });
  const request = requests[0]!;
  assert.equal(request.url, "https://dynamodb.eu-west-1.amazonaws.com/");
  assert.equal(request.method, "POST");
  assert.equal(request.headers.get("x-amz-target"), "DynamoDB_20120810.GetItem");
  assert.equal(request.headers.get("content-type"), "application/x-amz-json-1.0");
  assert.match(
    request.headers.get("authorization") ?? "",
    /^AWS4-HMAC-SHA256 Credential=AKID\/20260102\/eu-west-1\/dynamodb\/aws4_request/,
  );
  assert.deepEqual(await request.json(), {
    TableName: "t-1",
    Key: { id: { S: "m-1" } },
    ConsistentRead: true,
  });
  assert.deepEqual(results, ["GetItem ok"]);
});

Deno.test("dynamodb client: dynamodb: a missing item is undefined; PutItem sends the condition and ALL_OLD", async () => {
  const { c, requests } = client(() => Response.json({}));
  assert.equal(await c.getItem("t-1", { id: { S: "x" } }), undefined);
  const { old } = await c.putItem("t-1", { id: { S: "x" } }, {
    conditionExpression: "attribute_not_exists(id)",
    expressionAttributeNames: {},
    expressionAttributeValues: { ":now": { N: "1" } },
  }, { returnOld: true });
  assert.equal(old, undefined);
  assert.deepEqual(await requests[1]!.json(), {
    TableName: "t-1",
    Item: { id: { S: "x" } },
    ConditionExpression: "attribute_not_exists(id)",
    ExpressionAttributeValues: { ":now": { N: "1" } },
    ReturnValues: "ALL_OLD",
  });
});

Deno.test("dynamodb client: dynamodb: errors keep their code; condition failures are distinct; throttling and 5xx are transient", async () => {
  const rows: Array<[Response, string, boolean, boolean]> = [
    [error("ConditionalCheckFailedException"), "ConditionalCheckFailedException", true, false],
    [
      error("ProvisionedThroughputExceededException"),
      "ProvisionedThroughputExceededException",
      false,
      true,
    ],
    [error("ThrottlingException"), "ThrottlingException", false, true],
    [error("InternalServerError", 500), "InternalServerError", false, true],
    [new Response("oops", { status: 503 }), "Http503", false, true],
    [error("ResourceNotFoundException"), "ResourceNotFoundException", false, false],
    [error("AccessDeniedException"), "AccessDeniedException", false, false],
  ];
  for (const [response, code, conditional, transient] of rows) {
    const { c, results } = client(() => response);
    const thrown = await c.deleteItem("t-1", { id: { S: "x" } }).then(() => undefined, (e) => e);
    assert.ok(thrown instanceof DynamoDbError, code);
    assert.equal(thrown.code, code);
    assert.equal(thrown.conditionFailed, conditional, code);
    assert.equal(isRetriable(thrown), transient, code);
    assert.equal(thrown.category, transient ? "TRANSIENT" : "PERMANENT", code);
    assert.deepEqual(results, [`DeleteItem ${code}`]);
  }
});

Deno.test("dynamodb client: dynamodb: a network failure is transient; a clock-skew answer is signed again once", async () => {
  const failing = new DynamoDbClient({
    clock: { ...systemClock, now: () => Date.UTC(2026, 0, 2, 3, 4, 5) },
    region: "eu-west-1",
    credentials: () => Promise.resolve({ accessKeyId: "a", secretAccessKey: "b" }),
    fetch: () => Promise.reject(new TypeError("connection refused")),
  });
  const thrown = await failing.describeTable("t-1").then(() => undefined, (e) => e);
  assert.ok(thrown instanceof DynamoDbError);
  assert.equal(thrown.code, "NetworkError");
  assert.equal(isRetriable(thrown), true);

  let calls = 0;
  const { c, requests } = client(() => {
    calls++;
    if (calls === 1) {
      const r = error("InvalidSignatureException", 400, "Signature expired: 20260102T030405Z");
      r.headers.set("date", new Date(Date.UTC(2026, 0, 2, 3, 20, 0)).toUTCString());
      return r;
    }
    return Response.json({ Table: { TableStatus: "ACTIVE" } });
  });
  assert.deepEqual(await c.describeTable("t-1"), { TableStatus: "ACTIVE" });
  assert.equal(requests.length, 2);
  assert.equal(requests[1]!.headers.get("x-amz-date"), "20260102T032000Z");
});

Deno.test("dynamodb client: dynamodb endpoint: AWS_ENDPOINT_URL_DYNAMODB, else AWS_ENDPOINT_URL, else the region's", () => {
  assert.equal(
    dynamoDbEndpoint(
      { AWS_ENDPOINT_URL_DYNAMODB: "http://a", AWS_ENDPOINT_URL: "http://b" },
      "r-1",
    ),
    "http://a",
  );
  assert.equal(dynamoDbEndpoint({ AWS_ENDPOINT_URL: "http://b" }, "r-1"), "http://b");
  assert.equal(dynamoDbEndpoint({}, "eu-west-1"), "https://dynamodb.eu-west-1.amazonaws.com/");
});
