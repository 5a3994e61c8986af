/**
 * Workers in process with IDEMPOTENCY_TABLE on dynalite: a restart does not
 * resubmit what was accepted before it (and without the table it does, so the
 * test can fail), two workers on one queue submit each message_id once, and a
 * reused message_id with another payload is dead-lettered.
 */
import assert from "node:assert/strict";
import { startDynalite } from "../../lab/dynalite.ts";
import { type LabEnv, runWorkerUntil, sendBodies, startLabEnv } from "../support/lab_env.ts";
import { startEnrichFake, startValidatorFake } from "../support/fault_kit.ts";
import type { Worker } from "../../src/app/start_worker.ts";

const msg = (id: string, n: unknown = id) =>
  JSON.stringify({ message_id: id, user_id: "7", event_ts: 1735689600, payload: { n } });

function downstreams() {
  const enrich = startEnrichFake();
  const validator = startValidatorFake();
  // A little latency, so copies on two workers overlap.
  validator.delayMs = 20;
  return {
    /** every submission's message_id, as it arrived */
    get docs() {
      return validator.arrivals.map((a) => a.id);
    },
    urls: { enrich: enrich.url, validator: validator.url },
    close: async () => {
      await enrich.close();
      await validator.close();
    },
  };
}

/**
 * A stopped worker's aborted long poll stays open on the emulator's side for its
 * wait (1 s here) and would take a message sent now out of sight for 30 s.
 */
const pollsLapse = () => new Promise((resolve) => setTimeout(resolve, 1500));

/** A lab, dynalite (its table: `tableEnv`) and the downstreams; all closed after `fn`. */
async function withLabAndTable<T>(
  fn: (
    lab: LabEnv,
    down: ReturnType<typeof downstreams>,
    tableEnv: Record<string, string>,
  ) => Promise<T>,
): Promise<T> {
  const lab = await startLabEnv();
  const db = await startDynalite();
  const down = downstreams();
  try {
    return await fn(lab, down, { IDEMPOTENCY_TABLE: db.table, AWS_ENDPOINT_URL_DYNAMODB: db.url });
  } finally {
    await down.close();
    await db.close();
    await lab.close();
  }
}

function restartRun(withTable: boolean): Promise<{ submissions: number; duplicates: number }> {
  return withLabAndTable(async (lab, down, tableEnv) => {
    const extra = withTable ? tableEnv : {};
    const ids = ["a", "b", "c", "d", "e"];
    await sendBodies(lab, ids.map((id) => msg(id)));
    await runWorkerUntil(
      lab.env(down.urls, extra),
      async () => down.docs.length === 5 && (await lab.depth()) === 0,
      "5 accepted",
    );
    await pollsLapse();
    // The producer sends them all again (a retry after a timeout): a fresh process sees them.
    await sendBodies(lab, ids.map((id) => msg(id)));
    const outcomes = (w: Worker) =>
      w.metrics.messages.get({ outcome: "duplicate" }) +
      w.metrics.messages.get({ outcome: "accepted" });
    const second = await runWorkerUntil(
      lab.env(down.urls, extra),
      async (w) => (await lab.depth()) === 0 && outcomes(w) === 5,
      "the queue drained again and 5 outcomes",
    );
    return {
      submissions: down.docs.length,
      duplicates: second.metrics.messages.get({ outcome: "duplicate" }),
    };
  });
}

Deno.test("idempotency e2e: a restarted worker with the table submits nothing accepted before it; without, it resubmits", async () => {
  const withTable = await restartRun(true);
  assert.deepEqual(withTable, { submissions: 5, duplicates: 5 });
  const without = await restartRun(false);
  assert.deepEqual(without, { submissions: 10, duplicates: 0 });
});

Deno.test("idempotency e2e: two workers on one queue with the table: every producer duplicate submitted once", async () => {
  await withLabAndTable(async (lab, down, tableEnv) => {
    const extra = { ...tableEnv, SQS_MAX_BATCH: "2", MAX_IN_FLIGHT: "4" };
    const ids = Array.from({ length: 30 }, (_, i) => `m-${i}`);
    // Each body three times, interleaved, so copies land on both workers at once.
    await sendBodies(lab, [...ids, ...ids, ...ids].map((id) => msg(id)));
    const drained = async () => (await lab.depth()) === 0;
    const [a, b] = await Promise.all([
      runWorkerUntil(lab.env(down.urls, extra), drained, "the queue drained", 60_000),
      runWorkerUntil(lab.env(down.urls, extra), drained, "the queue drained", 60_000),
    ]);
    assert.equal(down.docs.length, 30, "each message_id submitted exactly once");
    assert.deepEqual(new Set(down.docs), new Set(ids));
    const outcome = (o: string) =>
      a.metrics.messages.get({ outcome: o }) + b.metrics.messages.get({ outcome: o });
    assert.equal(outcome("accepted"), 30);
    assert.equal(outcome("duplicate"), 60);
    const requests = (w: Worker, action: string) =>
      w.metrics.idempotencyRequests.get({ action, result: "ok" });
    assert.ok(requests(a, "PutItem") + requests(b, "PutItem") >= 30);
  });
});

Deno.test("idempotency e2e: a message_id reused with another payload is dead-lettered (VALIDATION) across restarts", async () => {
  await withLabAndTable(async (lab, down, tableEnv) => {
    await sendBodies(lab, [msg("x", 1)]);
    await runWorkerUntil(
      lab.env(down.urls, tableEnv),
      async () => down.docs.length === 1 && (await lab.depth()) === 0,
      "x accepted",
    );
    await pollsLapse();
    const reused = msg("x", 2);
    await sendBodies(lab, [reused]);
    const second = await runWorkerUntil(
      lab.env(down.urls, tableEnv),
      async () => (await lab.depth()) === 0,
      "the reused id settled",
    );
    assert.equal(down.docs.length, 1);
    const dlq = await lab.drainDlq();
    assert.deepEqual(dlq, [{
      body: reused,
      error: "VALIDATION",
      reason: "message_id reused with another payload",
    }]);
    assert.equal(second.metrics.idempotencyConflicts.get({ result: "mismatch" }), 1);
  });
});
