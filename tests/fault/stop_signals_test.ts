/**
 * One stop often delivers two signals. Real processes against
 * fauxqs and fake downstreams on 127.0.0.1.
 */
import assert from "node:assert/strict";
import {
  assertAcceptedOnce,
  finishQueue,
  idsOf,
  parsedLines,
  pause,
  untilAcceptedAndInWork,
  untilAllInWork,
  withWorkerProcesses,
  type WorkerProcess,
} from "../support/fault_kit.ts";

for (
  const variant of [
    {
      name: "a process-group SIGTERM to `deno task start` under load",
      argv: ["setsid", Deno.execPath(), "task", "start"],
      signal: (w: WorkerProcess) => Deno.kill(-w.pid, "SIGTERM"),
    },
    {
      name: "two SIGTERMs 10 ms apart to the deno process",
      argv: undefined,
      signal: async (w: WorkerProcess) => {
        w.kill("SIGTERM");
        await pause(10);
        w.kill("SIGTERM");
      },
    },
  ]
) {
  Deno.test(`stop signals: ${variant.name} drains and exits 0`, async () => {
    const ids = idsOf("s", 30);
    await withWorkerProcesses({ visibility: 30, ids, enrichDelayMs: 1000 }, async (rig, spawn) => {
      const { lab, enrich, validator } = rig;
      const worker = spawn({ MAX_IN_FLIGHT: "10", SHUTDOWN_GRACE_SECONDS: "5" }, variant.argv);
      const working = await untilAcceptedAndInWork(rig, ids);
      await variant.signal(worker);
      const status = await worker.status;
      const lines = parsedLines(worker.lines);
      assert.equal(status.code, 0, `exit code; output: ${worker.lines.slice(-5).join("\n")}`);
      assert.ok(!lines.some((l) => String(l.msg).startsWith("second signal")), "not forced");
      assert.ok(lines.some((l) => l.msg === "stopped"), "drained");
      assert.deepEqual(working.filter((id) => !validator.accepted.has(id)), [], "in work finished");

      enrich.delayMs = 0;
      await finishQueue(lab, { enrich, validator }, ids);
      assertAcceptedOnce(validator, ids);
    });
  });
}

Deno.test("stop signals: a second signal 2 s into the drain forces the exit, after releasing in-flight messages", async () => {
  const ids = idsOf("f", 10);
  await withWorkerProcesses({ visibility: 30, ids, enrichDelayMs: 20_000 }, async (rig, spawn) => {
    const worker = spawn({
      MAX_IN_FLIGHT: "10",
      HTTP_TIMEOUT_MS: "25000",
      SHUTDOWN_GRACE_SECONDS: "60",
    });
    await untilAllInWork(rig.enrich, ids);
    worker.kill("SIGTERM");
    await pause(2500);
    worker.kill("SIGTERM");
    const status = await worker.status;
    assert.equal(status.code, 1, "a forced stop says so");
    const lines = parsedLines(worker.lines);
    assert.ok(lines.some((l) => String(l.msg).startsWith("second signal")));
    assert.ok(lines.some((l) => l.msg === "stopped"), "stopped after handing messages back");
    const d = await rig.lab.admin.depth(rig.lab.queueUrl);
    assert.deepEqual(d, { visible: 10, inFlight: 0, delayed: 0 }, "released with visibility 0");
  });
});

Deno.test("stop signals: an idle worker stops at once on SIGTERM, its 20 s long poll aborted (maxReceiveCount 3)", async () => {
  await withWorkerProcesses({ visibility: 30, maxReceiveCount: 3 }, async (rig, spawn) => {
    const worker = spawn({ SQS_RECEIVE_WAIT_SECONDS: "20" });
    // Ready means SQS answered and the redrive policy is read; the polls are then waiting.
    for (let i = 0; (await worker.get("/readyz")).status !== 200; i++) {
      assert.ok(i < 100, "ready");
      await pause(100);
    }
    await pause(1000);
    const sent = performance.now();
    worker.kill("SIGTERM");
    const status = await worker.status;
    const ms = Math.round(performance.now() - sent);
    assert.equal(status.code, 0);
    // The old way waited out the poll (up to 20 s); a busy machine may take a second or two.
    assert.ok(ms < 5000, `stopped ${ms} ms after SIGTERM`);
    assert.deepEqual(await rig.lab.admin.depth(rig.lab.queueUrl), {
      visible: 0,
      inFlight: 0,
      delayed: 0,
    });
  });
});
