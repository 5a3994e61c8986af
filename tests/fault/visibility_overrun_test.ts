/**
 * Fault: enrichment slower than the visibility timeout. Two workers in process
 * share one fauxqs queue, so a message whose visibility ran out would be
 * taken and submitted by the other one.
 */
import assert from "node:assert/strict";
import { runWorker, waitFor } from "../support/lab_env.ts";
import { assertAcceptedOnce, pause, startRig } from "../support/fault_kit.ts";

Deno.test("visibility overrun: the heartbeat keeps a 5 s enrichment under a 2 s visibility; no duplicate", async () => {
  const { lab, enrich, validator, env, send, close } = await startRig({ visibility: 2 });
  const ids = ["s1", "s2", "s3"];
  enrich.delayMs = 5000;
  try {
    await send(ids);
    const workerEnv = env({ HTTP_TIMEOUT_MS: "15000" });
    const a = runWorker(workerEnv);
    const b = runWorker(workerEnv);
    try {
      await waitFor(() => enrich.requests.length > 0, "the first enrichment call");
      // Well past the 2 s visibility and still inside the 5 s call: nothing may be visible.
      for (let i = 0; i < 6; i++) {
        await pause(500);
        const d = await lab.admin.depth(lab.queueUrl);
        if (validator.accepted.size === 0) {
          assert.equal(d.visible, 0, `visible at ${(i + 1) * 0.5} s: ${JSON.stringify(d)}`);
        }
      }
      await waitFor(
        async () => validator.accepted.size === ids.length && (await lab.depth()) === 0,
        "every message accepted and the queue empty",
        30_000,
      );
      await pause(2500); // a copy that escaped would be received and submitted by now
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    assertAcceptedOnce(validator, ids);
    const users = enrich.requests.flatMap((r) => r.ids);
    assert.equal(users.length, new Set(users).size, `each user looked up once: ${users}`);
    const extensions = (w: typeof a) =>
      w.metrics.sqsRequests.get({ action: "ChangeMessageVisibilityBatch", result: "ok" });
    assert.ok(extensions(a) + extensions(b) >= 2, "ChangeMessageVisibilityBatch was sent");
    assert.ok(
      a.metrics.visibilityExtensions.get() + b.metrics.visibilityExtensions.get() >= ids.length,
      "every message was extended",
    );
    const duplicates = a.metrics.messages.get({ outcome: "duplicate" }) +
      b.metrics.messages.get({ outcome: "duplicate" });
    assert.equal(duplicates, 0, "no copy was received again");
  } finally {
    await close();
  }
});
