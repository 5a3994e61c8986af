/**
 * Fault: the validator answers 5xx for a while. The worker runs in process
 * against fauxqs and fake downstreams on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { runWorker, waitFor } from "../support/lab_env.ts";
import { assertAcceptedOnce, pause, startRig } from "../support/fault_kit.ts";

Deno.test("validator 5xx burst: breaker opens, intake pauses, /readyz says why; then all accepted once", async () => {
  const { lab, validator, env, send, close } = await startRig({ visibility: 4 });
  const ids = Array.from({ length: 10 }, (_, i) => `v${i}`);
  validator.failWith = 503;
  try {
    await send(ids);
    const worker = runWorker(env({
      // One poller (MAX_IN_FLIGHT / SQS_MAX_BATCH), so a paused intake makes at most one more call.
      MAX_IN_FLIGHT: "10",
    }));
    const readyz = async () => {
      const res = await worker.app.request("/readyz");
      return { status: res.status, body: await res.json() as { reasons?: string[] } };
    };
    const validatorOpen = (r: { reasons?: string[] }) =>
      (r.reasons ?? []).some((reason) => reason.includes("validator circuit breaker is open"));
    try {
      await waitFor(
        async () => validatorOpen((await readyz()).body),
        "/readyz to report the open validator breaker",
        15_000,
      );
      const first = await readyz();
      assert.equal(first.status, 503);
      assert.equal(worker.metrics.breakerState.get({ target: "validator" }), 2);
      const receives = () =>
        worker.metrics.sqsRequests.get({ action: "ReceiveMessage", result: "ok" });
      const before = receives();
      // The breaker cools down for 5 s; 3.5 s of it is watched. A running intake would long-poll
      // (1 s each, nothing visible) about 3 more times; a paused one finishes the poll it began.
      await pause(3500);
      const during = receives() - before;
      const still = await readyz();
      assert.ok(validatorOpen(still.body), "still open at the end of the window");
      assert.ok(during <= 1, `${during} receives while the validator breaker was open`);
      validator.failWith = undefined; // the burst ends
      await waitFor(
        async () => validator.accepted.size === ids.length && (await lab.depth()) === 0,
        "every message accepted and the queue empty",
        40_000,
      );
      await waitFor(async () => (await readyz()).status === 200, "ready again", 15_000);
    } finally {
      await worker.stop();
    }
    assertAcceptedOnce(validator, ids);
    assert.ok(
      validator.requests.some((r) => r.status === 503),
      "the burst was seen by the worker",
    );
    assert.deepEqual(await lab.drainDlq(), [], "nothing dead-lettered");
  } finally {
    await close();
  }
});
