/**
 * Fault: the enrichment API browns out with 503 + Retry-After. The worker runs
 * in process against fauxqs and fake downstreams on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { receiveUnsettled, runWorker, sendBodies, waitFor } from "../support/lab_env.ts";
import { assertAcceptedOnce, msg, parsedLines, pause, startRig } from "../support/fault_kit.ts";

Deno.test("brownout: 503 + Retry-After opens the enrichment breaker; then all accepted once", async () => {
  const { lab, enrich, validator, env, send, close } = await startRig({ visibility: 4 });
  const ids = Array.from({ length: 30 }, (_, i) => `b${i}`);
  enrich.failWith = 503;
  enrich.retryAfter = "1";
  try {
    await send(ids);
    const worker = runWorker(env({
      // One request per id, so 30 messages make 30 calls and the breaker's minimum is reached.
      ENRICH_BATCH_MAX: "1",
      LOG_LEVEL: "warn",
    }));
    try {
      const opened = () =>
        parsedLines(worker.lines).find((l) =>
          l.msg === "circuit breaker changed state" && l.target === "enrichment" &&
          l.to === "open"
        );
      await waitFor(() => opened() !== undefined, "the enrichment breaker to open", 15_000);
      // The line says why and where: the last failure and the target's URL.
      assert.equal(opened()!.url, enrich.url);
      assert.match(String(opened()!.last_error), /503/, JSON.stringify(opened()));
      const readiness = parsedLines(worker.lines).find((l) => l.msg === "readiness changed");
      assert.ok(
        readiness && readiness.ready === false &&
          JSON.stringify(readiness.reasons).includes("enrichment circuit breaker is open"),
        `readiness change logged with its reasons: ${JSON.stringify(readiness)}`,
      );
      assert.equal(worker.metrics.breakerState.get({ target: "enrichment" }), 2);
      const ready = await worker.app.request("/readyz");
      assert.equal(ready.status, 503);
      const body = await ready.json() as { reasons: string[] };
      assert.ok(
        body.reasons.some((r) => r.includes("enrichment circuit breaker is open")),
        `readyz says why: ${JSON.stringify(body)}`,
      );
      await pause(1500);
      enrich.failWith = undefined; // the brownout ends
      await waitFor(
        async () => validator.accepted.size === ids.length && (await lab.depth()) === 0,
        "every message accepted and the queue empty",
        40_000,
      );
    } finally {
      await worker.stop();
    }
    assertAcceptedOnce(validator, ids);
    assert.deepEqual(await lab.drainDlq(), [], "nothing dead-lettered");
    // Retry-After is a floor: no user was asked again sooner than 1 s after a 503.
    const byUser = new Map<string, number[]>();
    for (const r of enrich.requests) {
      if (r.status !== 503) continue;
      for (const id of r.ids) byUser.set(id, [...(byUser.get(id) ?? []), r.at]);
    }
    for (const [user, times] of byUser) {
      for (let i = 1; i < times.length; i++) {
        assert.ok(
          times[i]! - times[i - 1]! >= 950,
          `${user} retried after ${times[i]! - times[i - 1]!} ms`,
        );
      }
    }
    // Without the breaker each message would try about 4 times within its 3.2 s budget (~120
    // calls); the open breaker refuses them instead.
    const failed = enrich.requests.filter((r) => r.status === 503).length;
    assert.ok(failed < 2 * ids.length, `${failed} calls during the brownout`);
  } finally {
    await close();
  }
});

Deno.test("brownout: a message held on its last receive waits between rounds, no hot loop", async () => {
  const { lab, enrich, validator, env, close } = await startRig({ visibility: 4 });
  enrich.failWith = 503;
  enrich.retryAfter = "1";
  try {
    await sendBodies(lab, [msg("held")]);
    // The worker sees ApproximateReceiveCount 3 = maxReceiveCount.
    await receiveUnsettled(lab, 2);
    const worker = runWorker(env({ LOG_LEVEL: "info" }));
    try {
      await waitFor(() => enrich.requests.length > 0, "the first enrichment call");
      await pause(6000); // past the first round's budget (3.2 s): it is held now
      const holds = parsedLines(worker.lines).filter((l) =>
        l.msg === "holding a message on its last receive"
      ).length;
      assert.ok(holds >= 1, "it was held, not released to the redrive policy");
      // Retry-After 1 s allows about 6 calls in 6 s; a loop without a pause makes hundreds of
      // calls, or spins on the open breaker's CircuitOpenError.
      assert.ok(holds <= 10, `held ${holds} times in 6 s`);
      assert.ok(enrich.requests.length <= 12, `${enrich.requests.length} calls in 6 s`);
      enrich.failWith = undefined;
      await waitFor(
        async () => validator.accepted.size === 1 && (await lab.depth()) === 0,
        "accepted after the brownout",
        40_000,
      );
    } finally {
      await worker.stop();
    }
    assertAcceptedOnce(validator, ["held"]);
    assert.deepEqual(await lab.drainDlq(), [], "not handed to the DLQ as if it were poison");
  } finally {
    await close();
  }
});
