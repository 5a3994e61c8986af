/** The lab's DynamoDB fault proxy (lab/table_proxy.ts) and the dynalite child that hosts it. */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import {
  refusalAnswer,
  REFUSALS,
  startTableProxy,
  type TableProxy,
  type TableProxyOptions,
} from "../../lab/table_proxy.ts";
import { spawnDynalite } from "../../lab/dynalite.ts";
import { DynamoDbClient, DynamoDbError } from "../../src/adapters/dynamodb_client.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** A fake table that answers every request `{}` and records what reached it. */
function fakeTable() {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.text();
    seen.push(req.headers.get("x-amz-target") ?? "");
    return Response.json({}, { headers: { "content-type": "application/x-amz-json-1.0" } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

/** A proxy in front of a fake table, both closed after `fn`. */
async function withProxy(
  options: Omit<TableProxyOptions, "target">,
  fn: (proxy: TableProxy, upstream: ReturnType<typeof fakeTable>) => Promise<void>,
): Promise<void> {
  const upstream = fakeTable();
  const proxy = startTableProxy({ target: upstream.url, ...options });
  try {
    await fn(proxy, upstream);
  } finally {
    await proxy.close();
    await upstream.close();
  }
}

const call = async (url: string, action: string, signal?: AbortSignal) => {
  const res = await fetch(`${url}/`, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `DynamoDB_20120810.${action}`,
    },
    body: JSON.stringify({ TableName: "sluice-idempotency", Key: { id: { S: "m-1" } } }),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) as Record<string, string> : {} };
};

Deno.test("table proxy: without a fault every request is forwarded and counted by action", async () => {
  await withProxy({}, async (proxy, upstream) => {
    assert.equal((await call(proxy.url, "PutItem")).status, 200);
    assert.equal((await call(proxy.url, "GetItem")).status, 200);
    assert.deepEqual(upstream.seen, ["DynamoDB_20120810.PutItem", "DynamoDB_20120810.GetItem"]);
    assert.deepEqual(proxy.stats(), {
      requests: 2,
      byAction: { PutItem: 1, GetItem: 1 },
      refused: 0,
      throttled: 0,
      slowed: 0,
    });
  });
});

Deno.test("table proxy: refuse answers every request with DynamoDB's errors in turn, none reaches the table, until the window ends", async () => {
  const clock = new FakeClock({ start: 0 });
  await withProxy({ now: clock.now }, async (proxy, upstream) => {
    assert.equal(proxy.startFault({ kind: "refuse" }, 10_000), 10_000, "when the window ends");
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await call(proxy.url, "PutItem"));
    assert.deepEqual(answers.map((a) => a.status), [400, 400, 400, 500, 400]);
    assert.deepEqual(answers.map((a) => a.body.__type), [
      "com.amazon.coral.service#AccessDeniedException",
      "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
      "com.amazon.coral.service#ExpiredTokenException",
      "com.amazonaws.dynamodb.v20120810#InternalServerError",
      "com.amazon.coral.service#AccessDeniedException",
    ]);
    assert.match(
      answers[0]!.body.Message!,
      /^User: arn:aws:sts::000000000000:assumed-role\/.+ is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table\/sluice-idempotency because/,
    );
    assert.equal(answers[1]!.body.message, "Requested resource not found");
    assert.equal(answers[2]!.body.message, "The security token included in the request is expired");
    assert.equal(upstream.seen.length, 0, "a refused request never reaches the table");
    clock.set(10_000);
    assert.equal((await call(proxy.url, "PutItem")).status, 200, "the window is over");
    assert.equal(upstream.seen.length, 1);
    assert.equal(proxy.stats().refused, 5);
  });
});

Deno.test("table proxy: refuse with one refusal answers only that one; endFault() ends it at once", async () => {
  await withProxy({}, async (proxy) => {
    proxy.startFault({ kind: "refuse", refusal: "not-found" });
    for (let i = 0; i < 3; i++) {
      const a = await call(proxy.url, "GetItem");
      assert.equal(a.body.__type, "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException");
    }
    proxy.endFault();
    assert.equal((await call(proxy.url, "GetItem")).status, 200);
  });
});

Deno.test("table proxy: throttle refuses the drawn share with HTTP 400 throttling errors in turn, forwards the rest", async () => {
  // Draws below 0.6 are throttled: requests 1, 3 and 4.
  const draws = [0.1, 0.9, 0.59, 0.2, 0.6, 0.99];
  await withProxy({ random: () => draws.shift()! }, async (proxy, upstream) => {
    proxy.startFault({ kind: "throttle", share: 0.6 }, 60_000);
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await call(proxy.url, "UpdateItem"));
    assert.deepEqual(answers.map((a) => a.status), [400, 200, 400, 400, 200, 200]);
    assert.deepEqual(answers.filter((a) => a.status === 400).map((a) => a.body.__type), [
      "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
      "com.amazonaws.dynamodb.v20120810#ThrottlingException",
      "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    ]);
    assert.match(answers[0]!.body.message!, /level of configured provisioned throughput/);
    assert.equal(upstream.seen.length, 3);
    assert.equal(proxy.stats().throttled, 3);
  });
});

Deno.test("table proxy: slow forwards at once and holds the answer: a client that gives up has still written", async () => {
  await withProxy({}, async (proxy, upstream) => {
    proxy.startFault({ kind: "slow", slowMs: 300 }, 60_000);
    const t0 = performance.now();
    const answer = await call(proxy.url, "PutItem");
    assert.equal(answer.status, 200);
    assert.ok(performance.now() - t0 >= 290, `held ${performance.now() - t0} ms`);
    proxy.startFault({ kind: "slow", slowMs: 60_000 }, 60_000);
    const gaveUp = call(proxy.url, "PutItem", AbortSignal.timeout(200));
    await assert.rejects(gaveUp, /TimeoutError|aborted/);
    assert.equal(upstream.seen.length, 2, "the write landed though its answer never came");
    assert.equal(proxy.stats().slowed, 2);
  });
});

Deno.test("table proxy: refusalAnswer: every refusal is JSON DynamoDB's client reads, with the right retry class", async () => {
  const retriable = new Map<string, boolean>();
  for (const refusal of REFUSALS) {
    const res = refusalAnswer(refusal, "DeleteItem", "t");
    assert.equal(res.headers.get("content-type"), "application/x-amz-json-1.0");
    assert.ok(JSON.parse(await res.text()).__type);
    retriable.set(refusal, res.status >= 500);
  }
  assert.deepEqual(Object.fromEntries(retriable), {
    "access-denied": false,
    "not-found": false,
    "expired-token": false,
    "internal-error": true,
  });
});

Deno.test("table proxy: in the dynalite child, a fault command reaches sluice's DynamoDB client as DynamoDB errors; the lab's own client goes around it", async () => {
  const db = await spawnDynalite("proxy-child-test");
  const worker = new DynamoDbClient({
    clock: systemClock,
    region: "us-east-1",
    endpoint: db.proxyUrl,
    credentials: () => Promise.resolve({ accessKeyId: "lab", secretAccessKey: "lab-secret" }),
  });
  try {
    await worker.putItem(db.table, { id: { S: "a" } });
    const sent = Date.now();
    const until = await db.startFault({ kind: "refuse", refusal: "access-denied" }, 60_000);
    assert.ok(
      until >= sent + 60_000 && until <= Date.now() + 60_000,
      "the child's end of the window",
    );
    const denied = await worker.getItem(db.table, { id: { S: "a" } }).catch((e) => e);
    assert.ok(denied instanceof DynamoDbError);
    assert.equal(denied.code, "AccessDeniedException");
    assert.match(denied.message, /not authorized to perform: dynamodb:GetItem/);
    assert.deepEqual(
      await db.client.getItem(db.table, { id: { S: "a" } }),
      { id: { S: "a" } },
      "the lab's client reads dynalite directly",
    );
    await db.startFault({ kind: "throttle", share: 1 }, 60_000);
    const throttled = await worker.putItem(db.table, { id: { S: "b" } }).catch((e) => e);
    assert.ok(throttled instanceof DynamoDbError);
    assert.equal(throttled.code, "ProvisionedThroughputExceededException");
    await db.endFault();
    await worker.putItem(db.table, { id: { S: "c" } });
    const stats = await db.proxyStats();
    assert.deepEqual({ refused: stats.refused, throttled: stats.throttled }, {
      refused: 1,
      throttled: 1,
    });
    assert.equal(stats.requests, 4);
  } finally {
    await db.close();
  }
});
