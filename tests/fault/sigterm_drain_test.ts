/**
 * Fault: SIGTERM while messages are in flight. Real processes
 * (`deno run ... src/main.ts`) against fauxqs and fake downstreams on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { sendBodies, waitFor } from "../support/lab_env.ts";
import {
  assertAcceptedOnce,
  finishQueue,
  inWork,
  msg,
  parsedLines,
  spawnWorker,
  startRig,
  usersAsked,
  type WorkerProcess,
} from "../support/fault_kit.ts";

/** Generous: the machine is noisy; what matters is that the grace bounds the exit. */
const MARGIN_MS = 6000;

Deno.test("SIGTERM drain: in-flight work finishes within the grace, exit 0, the rest is left for the next worker", async () => {
  const { lab, enrich, validator, close } = await startRig({ visibility: 3 });
  const ids = Array.from({ length: 30 }, (_, i) => `t${i}`);
  enrich.delayMs = 1000;
  let worker: WorkerProcess | undefined;
  try {
    await sendBodies(lab, ids.map((id) => msg(id)));
    const env = lab.env({ enrich: enrich.url, validator: validator.url }, {
      SQS_VISIBILITY_TIMEOUT_SECONDS: "3",
      MAX_IN_FLIGHT: "10",
      SHUTDOWN_GRACE_SECONDS: "4",
      LOG_LEVEL: "info",
    });
    worker = spawnWorker(env);
    // Signal while a batch is inside its 1 s enrichment call (asked for, not yet accepted).
    await waitFor(
      () => validator.accepted.size >= 5 && inWork(ids, enrich, validator).length > 0,
      "the worker to accept 5 and be enriching more",
      60_000,
    );
    const working = inWork(ids, enrich, validator);
    const started = Date.now();
    worker.kill("SIGTERM");
    const status = await worker.status;
    const elapsed = Date.now() - started;
    assert.equal(status.code, 0, `exit code; stderr: ${worker.stderr().slice(-1000)}`);
    assert.ok(elapsed <= 4000 + MARGIN_MS, `exited ${elapsed} ms after SIGTERM`);
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
  } finally {
    await worker?.close();
    await close();
  }
});

Deno.test("SIGTERM drain: past the grace, unfinished messages are released at once (visibility 0)", async () => {
  // A 30 s visibility: only an explicit release makes them visible again during this test.
  const { lab, enrich, validator, close } = await startRig({ visibility: 30 });
  const ids = Array.from({ length: 10 }, (_, i) => `g${i}`);
  enrich.delayMs = 8000;
  let worker: WorkerProcess | undefined;
  try {
    await sendBodies(lab, ids.map((id) => msg(id)));
    const env = lab.env({ enrich: enrich.url, validator: validator.url }, {
      SQS_VISIBILITY_TIMEOUT_SECONDS: "30",
      // One poller that holds all 10 slots once it has the 10 messages: no poll is left open.
      MAX_IN_FLIGHT: "10",
      HTTP_TIMEOUT_MS: "15000",
      SHUTDOWN_GRACE_SECONDS: "1",
      LOG_LEVEL: "info",
    });
    worker = spawnWorker(env);
    await waitFor(
      () => usersAsked(enrich) === ids.length,
      "all 10 messages in work",
      60_000,
    );
    const started = Date.now();
    worker.kill("SIGTERM");
    const status = await worker.status;
    const elapsed = Date.now() - started;
    assert.equal(status.code, 0, `exit code; stderr: ${worker.stderr().slice(-1000)}`);
    assert.ok(
      elapsed <= 1000 + MARGIN_MS,
      `exited ${elapsed} ms after SIGTERM\n${worker.lines.join("\n")}`,
    );
    const lines = parsedLines(worker.lines);
    assert.ok(lines.some((l) => l.msg === "grace period over; releasing unfinished messages"));
    assert.equal(validator.accepted.size, 0, "nothing finished");
    const d = await lab.admin.depth(lab.queueUrl);
    assert.deepEqual(d, { visible: 10, inFlight: 0, delayed: 0 }, "released with visibility 0");

    enrich.delayMs = 0;
    await finishQueue(lab, { enrich, validator }, ids, undefined, 20_000);
    assertAcceptedOnce(validator, ids);
  } finally {
    await worker?.close();
    await close();
  }
});
