/**
 * Fault: SIGTERM while messages are in flight. Real processes
 * (`deno run ... src/main.ts`) against fauxqs and fake downstreams on 127.0.0.1.
 */
import assert from "node:assert/strict";
import {
  assertAcceptedOnce,
  finishQueue,
  idsOf,
  parsedLines,
  untilAcceptedAndInWork,
  untilAllInWork,
  withWorkerProcesses,
  type WorkerProcess,
} from "../support/fault_kit.ts";

/** Generous: the machine is noisy; what matters is that the grace bounds the exit. */
const MARGIN_MS = 6000;

/** SIGTERM, then exit code 0 within the grace (`graceMs`) plus MARGIN_MS. */
async function assertSigtermExitsWithin(worker: WorkerProcess, graceMs: number): Promise<void> {
  const started = Date.now();
  worker.kill("SIGTERM");
  const status = await worker.status;
  const elapsed = Date.now() - started;
  assert.equal(status.code, 0, `exit code; stderr: ${worker.stderr().slice(-1000)}`);
  assert.ok(
    elapsed <= graceMs + MARGIN_MS,
    `exited ${elapsed} ms after SIGTERM\n${worker.lines.join("\n")}`,
  );
}

Deno.test("SIGTERM drain: in-flight work finishes within the grace, exit 0, the rest is left for the next worker", async () => {
  const ids = idsOf("t", 30);
  await withWorkerProcesses({ visibility: 3, ids, enrichDelayMs: 1000 }, async (rig, spawn) => {
    const { lab, enrich, validator } = rig;
    const worker = spawn({ MAX_IN_FLIGHT: "10", SHUTDOWN_GRACE_SECONDS: "4" });
    // Signal while a batch is inside its 1 s enrichment call (asked for, not yet accepted).
    const working = await untilAcceptedAndInWork(rig, ids);
    await assertSigtermExitsWithin(worker, 4000);
    const lines = parsedLines(worker.lines);
    const stopping = lines.find((l) => typeof l.msg === "string" && l.msg.startsWith("stopping"));
    assert.ok(stopping, "logged the stop");
    assert.ok(Number(stopping.in_flight) >= working.length, "the messages in work were in flight");
    assert.ok(!lines.some((l) => l.msg === "grace period over; releasing unfinished messages"));
    assert.ok(lines.some((l) => l.msg === "stopped"), "logged the end of the drain");
    // Every message in work at the signal finished (1 s enrichment < 4 s grace).
    const unfinished = working.filter((id) => !validator.accepted.has(id));
    assert.deepEqual(unfinished, [], `in work at SIGTERM: ${working}`);
    assert.ok(validator.accepted.size < ids.length, "the rest was left in the queue");

    // The next worker finds everything else; what the first accepted was deleted (no duplicate).
    enrich.delayMs = 0;
    const next = await finishQueue(lab, { enrich, validator }, ids);
    assertAcceptedOnce(validator, ids);
    assert.equal(next.metrics.messages.get({ outcome: "duplicate" }), 0);
  });
});

Deno.test("SIGTERM drain: past the grace, unfinished messages are released at once (visibility 0)", async () => {
  // A 30 s visibility: only an explicit release makes them visible again during this test.
  const ids = idsOf("g", 10);
  await withWorkerProcesses({ visibility: 30, ids, enrichDelayMs: 8000 }, async (rig, spawn) => {
    const { lab, enrich, validator } = rig;
    // One poller that holds all 10 slots once it has the 10 messages: no poll is left open.
    const worker = spawn({
      MAX_IN_FLIGHT: "10",
      HTTP_TIMEOUT_MS: "15000",
      SHUTDOWN_GRACE_SECONDS: "1",
    });
    await untilAllInWork(enrich, ids);
    await assertSigtermExitsWithin(worker, 1000);
    const lines = parsedLines(worker.lines);
    assert.ok(lines.some((l) => l.msg === "grace period over; releasing unfinished messages"));
    assert.equal(validator.accepted.size, 0, "nothing finished");
    const d = await lab.admin.depth(lab.queueUrl);
    assert.deepEqual(d, { visible: 10, inFlight: 0, delayed: 0 }, "released with visibility 0");

    enrich.delayMs = 0;
    await finishQueue(lab, { enrich, validator }, ids, undefined, 20_000);
    assertAcceptedOnce(validator, ids);
  });
});
