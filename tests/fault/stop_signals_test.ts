/**
 * Defect 9 (issue 9): one stop often delivers two signals. Real processes against
 * fauxqs and fake downstreams on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { sendBodies, waitFor } from "../support/lab_env.ts";
import {
  assertAcceptedOnce,
  finishQueue,
  inWork,
  msg,
  parsedLines,
  pause,
  spawnWorker,
  startRig,
  usersAsked,
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
  Deno.test(`defect 9: ${variant.name} drains and exits 0`, async () => {
    const { lab, enrich, validator, close } = await startRig({ visibility: 30 });
    const ids = Array.from({ length: 30 }, (_, i) => `s${i}`);
    enrich.delayMs = 1000;
    let worker: WorkerProcess | undefined;
    try {
      await sendBodies(lab, ids.map((id) => msg(id)));
      const env = lab.env({ enrich: enrich.url, validator: validator.url }, {
        MAX_IN_FLIGHT: "10",
        SHUTDOWN_GRACE_SECONDS: "5",
        LOG_LEVEL: "info",
      });
      worker = spawnWorker(env, variant.argv);
      await waitFor(
        () => validator.accepted.size >= 5 && inWork(ids, enrich, validator).length > 0,
        "the worker to accept 5 and be enriching more",
        60_000,
      );
      const working = inWork(ids, enrich, validator);
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
    } finally {
      await worker?.close();
      await close();
    }
  });
}

Deno.test("defect 9: a second signal 2 s into the drain forces the exit, after releasing in-flight messages", async () => {
  const { lab, enrich, validator, close } = await startRig({ visibility: 30 });
  const ids = Array.from({ length: 10 }, (_, i) => `f${i}`);
  enrich.delayMs = 20_000;
  let worker: WorkerProcess | undefined;
  try {
    await sendBodies(lab, ids.map((id) => msg(id)));
    worker = spawnWorker(lab.env({ enrich: enrich.url, validator: validator.url }, {
      SQS_VISIBILITY_TIMEOUT_SECONDS: "30",
      MAX_IN_FLIGHT: "10",
      HTTP_TIMEOUT_MS: "25000",
      SHUTDOWN_GRACE_SECONDS: "60",
      LOG_LEVEL: "info",
    }));
    await waitFor(
      () => usersAsked(enrich) === ids.length,
      "all 10 messages in work",
      60_000,
    );
    worker.kill("SIGTERM");
    await pause(2500);
    worker.kill("SIGTERM");
    const status = await worker.status;
    assert.equal(status.code, 1, "a forced stop says so");
    const lines = parsedLines(worker.lines);
    assert.ok(lines.some((l) => String(l.msg).startsWith("second signal")));
    assert.ok(lines.some((l) => l.msg === "stopped"), "stopped after handing messages back");
    const d = await lab.admin.depth(lab.queueUrl);
    assert.deepEqual(d, { visible: 10, inFlight: 0, delayed: 0 }, "released with visibility 0");
  } finally {
    await worker?.close();
    await close();
  }
});
