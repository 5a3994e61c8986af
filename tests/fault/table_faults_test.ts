/**
 * Fault: the idempotency table refusing, throttling or slow, with workers in process on
 * fauxqs and dynalite behind a fault proxy. Every table failure is the table's: nothing is
 * dead-lettered or handed to the redrive policy because of it, nothing is submitted twice,
 * and a stop hands messages back before it gives their locks back.
 */
import assert from "node:assert/strict";
import { startDynalite } from "../../lab/dynalite.ts";
import { type LabEnv, runWorker, sendBodies, startLabEnv, waitFor } from "../support/lab_env.ts";
import { startEnrichFake, startValidatorFake } from "../support/fault_kit.ts";
import { startTableFaults, type TableFaults } from "../support/table_faults.ts";

const msg = (id: string) =>
  JSON.stringify({ message_id: id, user_id: `u-${id}`, event_ts: 1735689600, payload: {} });

/** Every user known; a validator accepting each submission after `validatorMs`. */
function downstreams(validatorMs = 0) {
  const enrich = startEnrichFake();
  const validator = startValidatorFake();
  validator.delayMs = validatorMs;
  return {
    submitted: validator.accepted,
    urls: { enrich: enrich.url, validator: validator.url },
    close: async () => {
      await enrich.close();
      await validator.close();
    },
  };
}

type Rig = {
  lab: LabEnv;
  faults: TableFaults;
  down: ReturnType<typeof downstreams>;
  env: (extra?: Record<string, string>) => Record<string, string>;
};

async function withTableRig<T>(
  options: { maxReceiveCount: number; visibility: number; validatorMs?: number },
  fn: (rig: Rig) => Promise<T>,
): Promise<T> {
  const lab = await startLabEnv(options);
  const db = await startDynalite();
  const faults = startTableFaults(db.url);
  const down = downstreams(options.validatorMs);
  const env = (extra: Record<string, string> = {}) =>
    lab.env(down.urls, {
      IDEMPOTENCY_TABLE: db.table,
      AWS_ENDPOINT_URL_DYNAMODB: faults.url,
      LOG_LEVEL: "info",
      ...extra,
    });
  try {
    return await fn({ lab, faults, down, env });
  } finally {
    await down.close();
    await faults.close();
    await db.close();
    await lab.close();
  }
}

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

function assertOnce(submitted: Map<string, number>, expected: string[]): void {
  assert.deepEqual([...submitted.keys()].sort(), [...expected].sort(), "each submitted");
  const twice = [...submitted].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], "none submitted twice");
}

Deno.test("table faults: a table refusing every request on the messages' last receive: nothing reaches the DLQ; all accepted once it serves again", async () => {
  await withTableRig({ maxReceiveCount: 1, visibility: 4 }, async ({ lab, faults, down, env }) => {
    const sent = ids(12, "r");
    const worker = runWorker(env({ SQS_MAX_BATCH: "4" }));
    try {
      await waitFor(() => worker.lines.some((l) => l.includes("sluice started")), "startup");
      faults.mode = "refuse";
      await sendBodies(lab, sent.map(msg));
      await waitFor(() => faults.faulted >= 5, "refusals");
      // Longer than the visibility: a message released meanwhile would come back and be moved.
      await new Promise((resolve) => setTimeout(resolve, 5000));
      faults.mode = "pass";
      await waitFor(
        async () => down.submitted.size === sent.length && (await lab.depth()) === 0,
        "all accepted",
        30_000,
      );
    } finally {
      await worker.stop();
    }
    assertOnce(down.submitted, sent);
    assert.deepEqual(await lab.drainDlq(), [], "no valid message in the DLQ");
    assert.equal(worker.metrics.breakerState.get({ target: "table" }), 0, "closed again");
  });
});

Deno.test("table faults: a throttling table opens the table breaker: intake pauses, /readyz says why, the warnings stay few", async () => {
  await withTableRig({ maxReceiveCount: 3, visibility: 10 }, async ({ lab, faults, down, env }) => {
    const sent = ids(60, "t");
    const worker = runWorker(env({ MAX_IN_FLIGHT: "40" }));
    let readyz = "";
    try {
      await waitFor(() => worker.lines.some((l) => l.includes("sluice started")), "startup");
      faults.mode = "throttle";
      await sendBodies(lab, sent.map(msg));
      await waitFor(async () => {
        const answer = await worker.app.request("/readyz");
        readyz = await answer.text();
        return answer.status === 503 && readyz.includes("table circuit breaker is open");
      }, "/readyz naming the table's breaker");
      await new Promise((resolve) => setTimeout(resolve, 3000));
      faults.mode = "pass";
      await waitFor(
        async () => down.submitted.size === sent.length && (await lab.depth()) === 0,
        "all accepted",
        40_000,
      );
    } finally {
      await worker.stop();
    }
    assertOnce(down.submitted, sent);
    assert.deepEqual(await lab.drainDlq(), []);
    const warnings = worker.lines.filter((l) => l.includes('"level":"warn"'));
    assert.ok(warnings.length <= 15, `${warnings.length} warn lines:\n${warnings.join("\n")}`);
  });
});

Deno.test("table faults: a stop while the table answers slowly hands every unfinished message back before its lock, so none is left in flight", async () => {
  await withTableRig(
    { maxReceiveCount: 1, visibility: 30, validatorMs: 4000 },
    async ({ lab, faults, down, env }) => {
      const sent = ids(8, "s");
      await sendBodies(lab, sent.map(msg));
      // Two submissions on the wire, the rest queued for a validator slot when the grace ends.
      const worker = runWorker(env({
        SHUTDOWN_GRACE_SECONDS: "1",
        HTTP_TIMEOUT_MS: "6000",
        VALIDATOR_CONCURRENCY: "2",
      }));
      try {
        await waitFor(() =>
          worker.metrics.idempotencyRequests.get({
            action: "PutItem",
            result: "ok",
          }) >= sent.length, "every message claimed");
        faults.mode = "slow";
        // Slower than HTTP_TIMEOUT_MS: every lock release times out.
        faults.slowMs = 8000;
      } finally {
        await worker.stop();
      }
      // Handed back (re-queued: every receive is the last): visible now, none held for 30 s.
      const depth = await lab.admin.depth(lab.queueUrl);
      assert.equal(depth.inFlight, 0, `left in flight: ${JSON.stringify(depth)}`);
      assert.equal(depth.visible, sent.length - down.submitted.size);
      assert.deepEqual(await lab.drainDlq(), []);
    },
  );
});
