/**
 * `sluice dlq redrive` in process against fauxqs, behind the lab's SQS proxy (shared DLQs,
 * SQS's error answers) or alone (its 1 MiB batch limit, a running worker): where each message
 * goes, how batches are cut, and that one run is one bounded, paced pass that loses nothing.
 */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { SqsClient } from "../../src/adapters/sqs_client.ts";
import type { LocalSqs } from "../support/local_sqs.ts";
import { sqsFaults } from "../../lab/sqs_answers.ts";
import { sluiceInProcess, withQueues } from "../support/cli_in_process.ts";
import { receiveAll, runWorker, startLabEnv, waitFor } from "../support/lab_env.ts";

const ARN = "arn:aws:sqs:us-east-1:000000000000";
const policy = (dlq: string) =>
  JSON.stringify({ deadLetterTargetArn: `${ARN}:${dlq}`, maxReceiveCount: 1 });

/** SQS with "work" and "pay" both dead-lettering to "dlq"; env for a redrive of "work". */
function withSharedDlq(fn: (sqs: LocalSqs, env: Record<string, string>) => Promise<void>) {
  return withQueues({
    dlq: {},
    work: { RedrivePolicy: policy("dlq") },
    pay: { RedrivePolicy: policy("dlq") },
  }, fn);
}

/** Lets SQS's redrive policy move `bodies` from `queue` to its DLQ (two receives each). */
async function deadLetterBySqs(sqs: LocalSqs, queue: string, bodies: string[]) {
  const client = new SqsClient({
    clock: systemClock,
    region: "us-east-1",
    credentials: () => Promise.resolve({ accessKeyId: "t", secretAccessKey: "t" }),
  });
  for (const body of bodies) await sqs.send(queue, body);
  for (let round = 0; round < 2; round++) {
    await client.receiveMessage({
      queueUrl: sqs.queueUrl(queue),
      maxNumberOfMessages: 10,
      waitTimeSeconds: 0,
      visibilityTimeout: 0,
    });
  }
  assert.equal(
    (await sqs.messages(queue)).length,
    0,
    `${queue}'s messages moved by its redrive policy`,
  );
}

const bodiesOf = async (sqs: LocalSqs, queue: string) =>
  (await sqs.messages(queue)).map((m) => m.body).sort();

Deno.test("dlq redrive: a DLQ shared by two queues sends each message back to its own source", async () => {
  await withSharedDlq(async (sqs, env) => {
    await deadLetterBySqs(sqs, "work", ["w1", "w2", "w3"]);
    await deadLetterBySqs(sqs, "pay", ["p1", "p2", "p3"]);
    // Dead-lettered by sluice itself (no source attribute): they came from SQS_QUEUE_URL.
    await sqs.send("dlq", "s1", { sluice_error: "VALIDATION", sluice_reason: "r" });
    await sqs.send("dlq", "s2", { sluice_error: "REJECTED", sluice_reason: "r" });
    const r = await sluiceInProcess(["dlq", "redrive", "--rate", "1000", "--output", "json"], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(await bodiesOf(sqs, "work"), ["s1", "s2", "w1", "w2", "w3"]);
    assert.deepEqual(await bodiesOf(sqs, "pay"), ["p1", "p2", "p3"]);
    assert.equal((await sqs.messages("dlq")).length, 0);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(doc.moved_to, { [sqs.queueUrl("work")]: 5, [sqs.queueUrl("pay")]: 3 });
    const lookups = sqs.requestsFor("GetQueueUrl").filter((q) => q.body?.QueueName === "pay");
    assert.equal(lookups.length, 1, "one GetQueueUrl per source, cached");
    assert.equal(lookups[0]!.body?.QueueOwnerAWSAccountId, "000000000000");
  });
});

Deno.test("dlq redrive: --to sends every message to that queue", async () => {
  await withSharedDlq(async (sqs, env) => {
    await deadLetterBySqs(sqs, "work", ["w1"]);
    await deadLetterBySqs(sqs, "pay", ["p1"]);
    await sqs.send("dlq", "s1", { sluice_error: "VALIDATION" });
    const r = await sluiceInProcess(["dlq", "redrive", "--to", sqs.queueUrl("pay")], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(await bodiesOf(sqs, "pay"), ["p1", "s1", "w1"]);
    assert.equal((await sqs.messages("work")).length, 0);
    assert.equal(
      sqs.requestsFor("GetQueueUrl").filter((q) => q.body?.QueueName === "pay").length,
      0,
    );
  });
});

Deno.test("dlq redrive: a source queue that is gone keeps its messages in the DLQ, the rest move", async () => {
  await withSharedDlq(async (sqs, env) => {
    await deadLetterBySqs(sqs, "pay", ["p1"]);
    await sqs.send("dlq", "s1", { sluice_error: "VALIDATION" });
    // The first GetQueueUrl finds the DLQ; the second looks for "pay".
    sqs.respond(
      "GetQueueUrl",
      { passThrough: true },
      sqsFaults.queueDoesNotExist(),
    );
    const r = await sluiceInProcess(["dlq", "redrive"], env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /not moved \(still in the DLQ\): \S+ source queue pay: GetQueueUrl QueueDoesNotExist/,
    );
    assert.deepEqual(await bodiesOf(sqs, "dlq"), ["p1"]);
    assert.deepEqual(await bodiesOf(sqs, "work"), ["s1"]);
  });
});

Deno.test("dlq redrive: a batch SQS still finds too long is halved and sent again", async () => {
  await withSharedDlq(async (sqs, env) => {
    for (let i = 0; i < 4; i++) await sqs.send("dlq", `m${i}`, { sluice_error: "VALIDATION" });
    // An endpoint with a lower batch limit than 1 MiB (SQS's was 256 KiB).
    sqs.respond(
      "SendMessageBatch",
      sqsFaults.batchRequestTooLong(400000, 262144),
    );
    const r = await sluiceInProcess(["dlq", "redrive"], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(await bodiesOf(sqs, "work"), ["m0", "m1", "m2", "m3"]);
    const sizes = sqs.requestsFor("SendMessageBatch").map((q) =>
      (q.body?.Entries as unknown[]).length
    );
    assert.deepEqual(sizes, [4, 2, 2]);
  });
});

Deno.test("dlq redrive: paced at its default rate, with a status line while it runs", async () => {
  await withSharedDlq(async (sqs, env) => {
    for (let i = 0; i < 30; i++) await sqs.send("dlq", `m${i}`, { sluice_error: "VALIDATION" });
    const r = await sluiceInProcess(["dlq", "redrive"], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((await sqs.messages("work")).length, 30);
    // 30 messages at 50/s: the batches after the first wait ~200 ms each (±20% jitter).
    const paced = r.sleeps.filter((ms) => ms >= 100);
    assert.ok(paced.length >= 2, `sleeps ${r.sleeps}`);
    assert.ok(paced.every((ms) => ms <= 240), `sleeps ${r.sleeps}`);
    assert.deepEqual(r.status.filter((l) => l !== "").at(-1), "redrive: moved 30 of at most 30");
    assert.equal(r.status.at(-1), "", "cleared before the result");
    assert.match(r.stderr, /one pass: at most 30 message\(s\) at 50\/s/);
  });
});

Deno.test("dlq redrive: ten 200 KB messages move, in requests within SQS's 1 MiB (fauxqs)", async () => {
  const lab = await startLabEnv();
  try {
    const big = (i: number) => JSON.stringify({ message_id: `m-${i}`, pad: "x".repeat(200_000) });
    for (let i = 0; i < 10; i += 5) {
      const entries = [0, 1, 2, 3, 4].map((j) => ({ Id: String(j), MessageBody: big(i + j) }));
      await lab.admin.call("SendMessageBatch", { QueueUrl: lab.dlqUrl, Entries: entries });
    }
    assert.equal(await lab.depth(lab.dlqUrl), 10);
    const r = await sluiceInProcess(["dlq", "redrive", "--rate", "1000"], labCliEnv(lab));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^moved 10 message\(s\)/);
    assert.deepEqual([await lab.depth(lab.queueUrl), await lab.depth(lab.dlqUrl)], [10, 0]);
  } finally {
    await lab.close();
  }
});

function labCliEnv(lab: Awaited<ReturnType<typeof startLabEnv>>): Record<string, string> {
  return {
    SQS_QUEUE_URL: lab.queueUrl,
    AWS_ENDPOINT_URL_SQS: lab.endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
  };
}

Deno.test("dlq redrive: one pass ends with a count while a worker dead-letters everything again; nothing lost, history kept (fauxqs)", async () => {
  const lab = await startLabEnv();
  const worker = runWorker(
    lab.env({ enrich: "http://127.0.0.1:9", validator: "http://127.0.0.1:9" }),
  );
  try {
    const bodies = Array.from({ length: 30 }, (_, i) => `not json ${i}`);
    for (let i = 0; i < bodies.length; i += 10) {
      const entries = bodies.slice(i, i + 10).map((body, j) => ({
        Id: String(j),
        MessageBody: body,
        MessageAttributes: {
          sluice_error: { DataType: "String", StringValue: "VALIDATION" },
          sluice_reason: { DataType: "String", StringValue: "invalid JSON" },
        },
      }));
      await lab.admin.call("SendMessageBatch", { QueueUrl: lab.dlqUrl, Entries: entries });
    }
    const r = await sluiceInProcess(["dlq", "redrive", "--output", "json"], labCliEnv(lab), {
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.moved, 30, "every message found at the start, once");
    assert.equal(doc.depth_at_start, 30);
    await waitFor(
      async () => await lab.depth(lab.queueUrl) === 0 && await lab.depth(lab.dlqUrl) === 30,
      "the worker dead-lettering all 30 again",
    );
    await worker.stop();
    // A second run is a new pass, with a new run id: it skips none of them.
    const again = await sluiceInProcess(
      ["dlq", "redrive", "--dry-run", "--output", "json"],
      labCliEnv(lab),
    );
    assert.equal(JSON.parse(again.stdout).would_move.length, 30);
    const dlq = await receiveAll(lab, lab.dlqUrl);
    assert.deepEqual(dlq.map((m) => m.body).sort(), [...bodies].sort(), "none lost, none doubled");
    for (const m of dlq) {
      assert.equal(m.attributes.sluice_redrive_run, doc.run, "the run's stamp survived");
      assert.ok(m.attributes.sluice_redriven_at, "redrive time survived");
      assert.equal(m.attributes.sluice_last_error, "VALIDATION");
      assert.equal(m.attributes.sluice_last_reason, "invalid JSON");
      assert.equal(m.attributes.sluice_error, "VALIDATION", "the fresh failure");
    }
  } finally {
    await worker.stop();
    await lab.close();
  }
});
