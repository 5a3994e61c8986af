/**
 * Fault: SQS itself fails. The worker runs in process against fauxqs behind the lab's
 * SQS proxy (tests/support/local_sqs.ts: scripted faults, SigV4 checked) and fake
 * downstreams, all on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { sqsFaults } from "../../lab/sqs_answers.ts";
import { runWorker, waitFor } from "../support/lab_env.ts";
import { loadConfig } from "../../src/app/config.ts";
import { startWorker } from "../../src/app/start_worker.ts";
import {
  assertAcceptedOnce,
  parsedLines,
  pause,
  type SqsRig,
  startSqsRig,
  untilAcceptedAndInWork,
} from "../support/fault_kit.ts";

const KEYS = { accessKeyId: "test", secretAccessKey: "test" };

function fakeQueues(visibility: number) {
  return {
    dlq: {},
    main: {
      VisibilityTimeout: String(visibility),
      // High enough that SQS's redrive never moves a message during the test.
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
        maxReceiveCount: 10,
      }),
    },
  };
}

/** Waits until every id is accepted and queue "main" is empty. */
function untilAllDeleted(rig: SqsRig, ids: readonly string[], what: string, timeoutMs: number) {
  return waitFor(
    async () =>
      rig.validator.accepted.size === ids.length && (await rig.sqs.messages("main")).length === 0,
    what,
    timeoutMs,
  );
}

/** A worker in process on the rig, logging warnings and errors only. */
function runOn(rig: SqsRig, overrides: Record<string, string>) {
  return runWorker(rig.env({ LOG_LEVEL: "warn", ...overrides }));
}

Deno.test("sqs faults: SQS outage: every action answers 503 for 4 s mid-run; nothing lost, nothing submitted twice", async () => {
  const rig = await startSqsRig({ verifyWith: KEYS, queues: fakeQueues(3) });
  const { sqs, enrich, validator } = rig;
  const ids = Array.from({ length: 30 }, (_, i) => `o${i}`);
  enrich.delayMs = 300;
  try {
    await rig.send(ids);
    const worker = runOn(rig, {
      SQS_VISIBILITY_TIMEOUT_SECONDS: "3",
      // Two pollers of 5: while one batch is in work the other keeps polling.
      MAX_IN_FLIGHT: "10",
      SQS_MAX_BATCH: "5",
    });
    try {
      // Start the outage while messages are inside their enrichment call: they are accepted
      // during it, and their deletes meet the outage.
      await untilAcceptedAndInWork(rig, ids, 5, 20_000);
      sqs.setDefault("*", sqsFaults.serviceUnavailable());
      await waitFor(async () => {
        const res = await worker.app.request("/readyz");
        const body = await res.json() as { reasons?: string[] };
        return res.status === 503 && (body.reasons ?? []).some((r) => /sqs|SQS/.test(r));
      }, "/readyz to report SQS failing");
      await pause(4000);
      sqs.setDefault("*", undefined); // SQS is back
      await untilAllDeleted(rig, ids, "every message accepted and deleted", 60_000);
      const health = await worker.app.request("/healthz");
      assert.equal(health.status, 200, "the worker kept running");
      assert.deepEqual(await health.json(), { status: "ok" });
      await waitFor(async () => (await worker.app.request("/readyz")).status === 200, "ready");
    } finally {
      await worker.stop();
    }
    assertAcceptedOnce(validator, ids);
    assert.equal((await sqs.messages("dlq")).length, 0, "nothing dead-lettered");
    const failedDeletes = sqs.requestsFor("DeleteMessageBatch").filter((r) => r.status === 503);
    assert.ok(failedDeletes.length >= 1, "deletes met the outage (and were retried)");
    const failedReceives = sqs.requestsFor("ReceiveMessage").filter((r) => r.status === 503);
    // Receives back off, or pause while the SQS breaker is open: 4 s of outage is not a hot loop.
    assert.ok(failedReceives.length < 60, `${failedReceives.length} failed receives`);
    assert.ok(sqs.requests.every((r) => r.signatureValid), "every request signed correctly");
  } finally {
    await rig.close();
  }
});

Deno.test("sqs faults: stale receipt handles on delete and visibility change: logged, counted, not fatal", async () => {
  const rig = await startSqsRig({ verifyWith: KEYS, queues: fakeQueues(2) });
  const { sqs, enrich, validator } = rig;
  const ids = ["x1", "x2", "x3"];
  enrich.delayMs = 3000; // past the 2 s visibility: the heartbeat must extend
  const allFailed = (code: string) => ({
    body: {
      Successful: [],
      Failed: Array.from({ length: 10 }, (_, i) => ({
        Id: String(i),
        Code: code,
        Message: code,
        SenderFault: true,
      })),
    },
  });
  // SQS answers these per entry when the handle is no longer the current receive.
  sqs.respond("ChangeMessageVisibilityBatch", allFailed("MessageNotInflight"));
  sqs.respond("DeleteMessageBatch", allFailed("ReceiptHandleIsInvalid"));
  try {
    await rig.send(ids);
    const worker = runOn(rig, {
      SQS_VISIBILITY_TIMEOUT_SECONDS: "2",
      HTTP_TIMEOUT_MS: "10000",
    });
    try {
      await untilAllDeleted(rig, ids, "every message accepted and finally deleted", 30_000);
      const health = await worker.app.request("/healthz");
      assert.equal(health.status, 200, "the worker kept running");
      await health.body?.cancel();
      const metrics = await (await worker.app.request("/metrics")).text();
      assert.match(metrics, /sluice_stale_receipts_total\{kind="delete"\} [1-9]/);
      assert.match(metrics, /sluice_stale_receipts_total\{kind="visibility"\} [1-9]/);
    } finally {
      await worker.stop();
    }
    assert.ok(worker.metrics.staleReceipts.get({ kind: "delete" }) >= 1);
    assert.ok(worker.metrics.staleReceipts.get({ kind: "visibility" }) >= 1);
    const lines = parsedLines(worker.lines);
    const stale = lines.filter((l) => l.msg === "stale receipt handle");
    assert.ok(stale.some((l) => l.kind === "delete" && l.code === "ReceiptHandleIsInvalid"));
    assert.ok(stale.some((l) => l.kind === "visibility" && l.code === "MessageNotInflight"));
    assert.ok(!lines.some((l) => l.level === "error"), "no error logged");
    // The copies that came back were recognised: submitted once, deleted as duplicates.
    assertAcceptedOnce(validator, ids);
    assert.ok(worker.metrics.messages.get({ outcome: "duplicate" }) >= 1);
  } finally {
    await rig.close();
  }
});

Deno.test("sqs faults: partial DeleteMessageBatch failures (retriable InternalError) are retried per entry", async () => {
  // A 30 s visibility: an entry that was not retried would only come back after the test.
  const rig = await startSqsRig({ queues: fakeQueues(30) });
  const { sqs, validator } = rig;
  const ids = Array.from({ length: 10 }, (_, i) => `p${i}`);
  const dropped: string[] = [];
  let partialLeft = 3;
  // SQS loses the odd entries of the first batches: they are reported Failed (InternalError, not
  // the sender's fault); the even ones are really deleted.
  sqs.setDefault("DeleteMessageBatch", async (call) => {
    const entries = call.body.Entries as Array<{ Id: string; ReceiptHandle: string }>;
    if (partialLeft === 0 || entries.length < 2) {
      const whole = await call.forward();
      return { status: whole.status, body: whole.body };
    }
    partialLeft--;
    const keep = entries.filter((_, i) => i % 2 === 0);
    const drop = entries.filter((_, i) => i % 2 === 1);
    dropped.push(...drop.map((e) => e.ReceiptHandle));
    const kept = await call.forward({ ...call.body, Entries: keep });
    const answer = kept.body as { Successful?: unknown[]; Failed?: unknown[] };
    return {
      body: {
        Successful: answer.Successful ?? [],
        Failed: [
          ...(answer.Failed ?? []),
          ...drop.map((e) => ({
            Id: e.Id,
            Code: "InternalError",
            Message: "We encountered an internal error. Please try again.",
            SenderFault: false,
          })),
        ],
      },
    };
  });
  try {
    await rig.send(ids);
    const env = rig.env({ LOG_LEVEL: "warn", SQS_VISIBILITY_TIMEOUT_SECONDS: "30" });
    const worker = startWorker(loadConfig(env), { env, write: () => {} });
    try {
      await untilAllDeleted(
        rig,
        ids,
        "every message deleted, long before the 30 s visibility",
        15_000,
      );
    } finally {
      await worker.stop();
    }
    assert.ok(dropped.length >= 1, "some entries failed");
    const sent = new Map<string, number>();
    for (const r of sqs.requestsFor("DeleteMessageBatch")) {
      for (const e of (r.body?.Entries ?? []) as Array<{ ReceiptHandle: string }>) {
        sent.set(e.ReceiptHandle, (sent.get(e.ReceiptHandle) ?? 0) + 1);
      }
    }
    for (const handle of dropped) {
      assert.ok((sent.get(handle) ?? 0) >= 2, "a failed entry was sent again");
    }
    assertAcceptedOnce(validator, ids);
    assert.equal(worker.metrics.messages.get({ outcome: "duplicate" }), 0, "none came back");
    assert.equal(worker.metrics.staleReceipts.get({ kind: "delete" }), 0);
  } finally {
    await rig.close();
  }
});
