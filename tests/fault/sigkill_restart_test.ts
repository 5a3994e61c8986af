/**
 * Fault: the worker process is SIGKILLed mid-run and a new one is started.
 * Real processes (`deno run ... src/main.ts`) against fauxqs and fake
 * downstreams on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { waitFor } from "../support/lab_env.ts";
import { idsOf, pause, withWorkerProcesses } from "../support/fault_kit.ts";

Deno.test("SIGKILL mid-run, then a restart: nothing lost, duplicates only from in-flight work", async () => {
  const ids = idsOf("k", 60);
  // A 300 ms enrichment keeps about MAX_IN_FLIGHT messages in work at any moment.
  await withWorkerProcesses({ visibility: 3, ids, enrichDelayMs: 300 }, async (rig, spawn) => {
    const { lab, validator } = rig;
    const overrides = {
      // Two long polls, so receive waves overlap and the kill finds work in flight.
      MAX_IN_FLIGHT: "20",
    };
    const first = spawn(overrides);
    await waitFor(() => validator.accepted.size >= 15, "the first worker to accept 15", 60_000);
    // Kill while messages are in work.
    await waitFor(
      async () => (await lab.admin.depth(lab.queueUrl)).inFlight >= 1,
      "messages in flight",
      30_000,
    );
    first.kill("SIGKILL");
    const status = await first.status;
    assert.equal(status.signal, "SIGKILL");
    await pause(200); // a submission already on the wire may still land
    const acceptedBeforeRestart = new Set(validator.accepted.keys());
    const atKill = await lab.admin.depth(lab.queueUrl);
    assert.ok(acceptedBeforeRestart.size < ids.length, "killed mid-run");
    // Under load the work in flight may finish between the check and the kill; then no
    // duplicate at all is allowed below, which is the stricter case.
    console.log(`queue at the kill: ${JSON.stringify(atKill)}`);

    const second = spawn(overrides);
    await waitFor(
      async () => validator.accepted.size === ids.length && (await lab.depth()) === 0,
      "the second worker to finish the queue",
      60_000,
    );
    second.kill("SIGTERM");
    assert.equal((await second.status).code, 0);

    const lost = ids.filter((id) => !validator.accepted.has(id));
    assert.deepEqual(lost, [], "no message lost");
    const twice = [...validator.accepted].filter(([, n]) => n > 1).map(([id]) => id);
    assert.ok(
      [...validator.accepted.values()].every((n) => n <= 2),
      "none submitted more than twice",
    );
    // A duplicate is a message the killed worker submitted but had not deleted yet: it was in
    // flight (received, not deleted) when the process died.
    for (const id of twice) {
      assert.ok(acceptedBeforeRestart.has(id), `${id} was submitted twice but not in flight`);
    }
    assert.ok(
      twice.length <= atKill.inFlight,
      `${twice.length} duplicates, ${atKill.inFlight} in flight at the kill`,
    );
    assert.ok(twice.length <= 20, "at most MAX_IN_FLIGHT duplicates");
    assert.deepEqual(await lab.drainDlq(), [], "nothing dead-lettered");
  });
});
