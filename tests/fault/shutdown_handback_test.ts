/**
 * Shutdown hands work back without starting new work or feeding the redrive
 * policy. In-process workers (`stop()` is what SIGTERM
 * calls) against fauxqs and fake downstreams on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { runWorker, runWorkerUntil, sendBodies, startLabEnv, waitFor } from "../support/lab_env.ts";
import {
  assertAcceptedOnce,
  finishQueue,
  msg,
  startEnrichFake,
  startRig,
  startValidatorFake,
} from "../support/fault_kit.ts";

Deno.test("shutdown handback: no submission starts after the shutdown grace", async () => {
  const lab = await startLabEnv({ visibility: 30 });
  const enrich = startEnrichFake();
  const slow = startValidatorFake();
  slow.delayMs = 3000;
  const fast = startValidatorFake();
  const ids = ["m1", "m2", "m3"];
  try {
    await sendBodies(lab, ids.map((id) => msg(id)));
    const worker = runWorker(lab.env({ enrich: enrich.url, validator: slow.url }, {
      VALIDATOR_CONCURRENCY: "1",
      SHUTDOWN_GRACE_SECONDS: "1",
      HTTP_TIMEOUT_MS: "5000",
    }));
    await waitFor(() => slow.arrivals.length === 1, "the first submission", 30_000);
    const stopAt = Date.now();
    await worker.stop();
    const elapsed = Date.now() - stopAt;
    const graceEnd = stopAt + 1000;
    const late = slow.arrivals.filter((a) => a.at > graceEnd).map((a) => a.id);
    assert.deepEqual(late, [], `submissions started after the grace: ${late}`);
    assert.equal(slow.arrivals.length, 1, "only the submission on the wire ran");
    assert.equal(slow.accepted.size, 1, "the submission on the wire was awaited");
    // One request on the wire (3 s) bounds the stop, not three in a row.
    assert.ok(elapsed < 6000, `stopped ${elapsed} ms after the signal`);
    const d = await lab.admin.depth(lab.queueUrl);
    assert.equal(d.visible, 2, "the two queued submissions were released at once");

    await runWorkerUntil(
      lab.env({ enrich: enrich.url, validator: fast.url }),
      async () => fast.accepted.size === 2 && (await lab.depth()) === 0,
      "the next worker to finish the queue",
      20_000,
    );
    const first = [...slow.accepted.keys()];
    assertAcceptedOnce(fast, ids.filter((id) => !first.includes(id)));
    assert.ok(!fast.accepted.has(first[0]!), "the first worker's message was not submitted again");
  } finally {
    await enrich.close();
    await slow.close();
    await fast.close();
    await lab.close();
  }
});

Deno.test("shutdown handback: shutdown hands no valid message to the redrive policy (maxReceiveCount 1)", async () => {
  const { lab, enrich, validator, env, close } = await startRig({
    visibility: 30,
    maxReceiveCount: 1,
  });
  const ids = Array.from({ length: 25 }, (_, i) => `r${i}`);
  validator.failWith = 503;
  try {
    // With message attributes, as a producer would send them (tests/flow/settle_test.ts
    // checks that the copy keeps them).
    for (const id of ids) {
      await lab.admin.call("SendMessage", {
        QueueUrl: lab.queueUrl,
        MessageBody: msg(id),
        MessageAttributes: {
          trace: { DataType: "String", StringValue: `t-${id}` },
          priority: { DataType: "Number", StringValue: "7" },
        },
      });
    }
    const worker = runWorker(env({ SHUTDOWN_GRACE_SECONDS: "1" }));
    // Every message taken and refused at least once. The validator's breaker may open before
    // the last receive (it pauses intake), so "taken" is read from SQS, not the validator.
    await waitFor(
      async () =>
        (await lab.admin.depth(lab.queueUrl)).visible === 0 && validator.requests.length > 0,
      "every message received and refused",
      30_000,
    );
    await worker.stop();
    assert.equal(worker.metrics.messages.get({ outcome: "released" }), ids.length);

    // The next receive would move a released message to the DLQ: nothing may be there.
    validator.failWith = undefined;
    await finishQueue(lab, { enrich, validator }, ids, "the next worker to accept all 25");
    assert.deepEqual(await lab.drainDlq(), [], "nothing in the DLQ");
    assertAcceptedOnce(validator, ids);
  } finally {
    await close();
  }
});
