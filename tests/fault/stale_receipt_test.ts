/**
 * Fault: the heartbeat cannot extend a message in work (SQS unreachable), its visibility
 * lapses and another consumer receives it; when SQS answers again the old receipt is stale.
 * The message is no longer this worker's: it is not submitted from here, with or without the
 * idempotency table (whose lock the other copy takes once this one's lapses).
 */
import assert from "node:assert/strict";
import { startDynalite } from "../../lab/dynalite.ts";
import { startSqsProxy } from "../../lab/sqs_proxy.ts";
import { startEnrichFake, startValidatorFake } from "../support/fault_kit.ts";
import { runWorker, sendBodies, startLabEnv, waitFor } from "../support/lab_env.ts";

const BODY = JSON.stringify({
  message_id: "s-1",
  user_id: "u-1",
  event_ts: 1735689600,
  payload: {},
});

async function staleRun(withTable: boolean): Promise<{ submitted: number; stale: number }> {
  const lab = await startLabEnv({ visibility: 2 });
  const proxy = startSqsProxy({ target: lab.endpoint, defaultVisibilitySeconds: 2 });
  const db = withTable ? await startDynalite() : undefined;
  let release!: () => void;
  const enrich = startEnrichFake();
  enrich.hold = new Promise<void>((resolve) => release = resolve);
  const validator = startValidatorFake();
  try {
    await sendBodies(lab, [BODY]);
    const worker = runWorker(lab.env({ enrich: enrich.url, validator: validator.url }, {
      AWS_ENDPOINT_URL_SQS: proxy.url,
      LOG_LEVEL: "warn",
      ...(db ? { IDEMPOTENCY_TABLE: db.table, AWS_ENDPOINT_URL_DYNAMODB: db.url } : {}),
    }));
    try {
      await waitFor(() => enrich.requests.length > 0, "the lookup asked for");
      // SQS out of reach: no extension lands, the visibility lapses.
      proxy.startOutage(3500);
      await new Promise((resolve) => setTimeout(resolve, 2500));
      // Another consumer takes the message (and keeps it out of sight).
      const other = await lab.admin.call<{ Messages?: unknown[] }>("ReceiveMessage", {
        QueueUrl: lab.queueUrl,
        VisibilityTimeout: 60,
      });
      assert.equal(other.Messages?.length, 1, "received elsewhere");
      // SQS answers again: the next extension finds the old receipt stale.
      await waitFor(() => worker.metrics.staleReceipts.get({ kind: "visibility" }) > 0, "stale");
      release();
      await waitFor(() => worker.metrics.messages.get({ outcome: "released" }) > 0, "let go");
      await new Promise((resolve) => setTimeout(resolve, 300));
      return {
        submitted: validator.arrivals.length,
        stale: worker.metrics.staleReceipts.get({ kind: "visibility" }),
      };
    } finally {
      release();
      await worker.stop();
    }
  } finally {
    await enrich.close();
    await validator.close();
    await proxy.close();
    await db?.close();
    await lab.close();
  }
}

Deno.test("stale receipt: a message whose receipt went stale under the heartbeat is not submitted", async () => {
  const result = await staleRun(false);
  assert.equal(result.submitted, 0);
  assert.ok(result.stale >= 1);
});

Deno.test("stale receipt: with the idempotency table, a stale receipt loses the lock and is not submitted", async () => {
  const result = await staleRun(true);
  assert.equal(result.submitted, 0);
  assert.ok(result.stale >= 1);
});
