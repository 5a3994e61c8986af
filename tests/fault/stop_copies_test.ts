/**
 * Fault: a stop whose grace ends while submissions are on the wire, on a queue where every
 * receive is the last (maxReceiveCount 1), workers in process on fauxqs. A producer's second
 * copy waiting for its first copy must learn how the first ended before it is handed back:
 * handed back while the first is being accepted, the next worker would submit it again.
 */
import assert from "node:assert/strict";
import { startEnrichFake, startValidatorFake } from "../support/fault_kit.ts";
import { runWorker, sendBodies, startLabEnv, waitFor } from "../support/lab_env.ts";

const msg = (id: string) =>
  JSON.stringify({ message_id: id, user_id: `u-${id}`, event_ts: 1735689600, payload: {} });

Deno.test("stop copies: a producer's second copy waiting at the end of the grace is deleted as the duplicate it is, never submitted again", async () => {
  const lab = await startLabEnv({ maxReceiveCount: 1, visibility: 30 });
  const enrich = startEnrichFake();
  const validator = startValidatorFake();
  validator.delayMs = 1500;
  const urls = { enrich: enrich.url, validator: validator.url };
  const onWire = () => validator.arrivals.length - validator.requests.length;
  try {
    const ids = Array.from({ length: 10 }, (_, i) => `c-${i}`);
    // Both copies of each message in one batch: they are received together.
    await sendBodies(lab, ids.flatMap((id) => [msg(id), msg(id)]));
    const first = runWorker(lab.env(urls, { LOG_LEVEL: "warn", MAX_IN_FLIGHT: "40" }));
    await waitFor(() => onWire() >= 5, "submissions on the wire");
    // The grace ends while the first copies are on the wire, their second copies waiting.
    await first.stop(200);
    assert.ok(validator.accepted.size > 0, "the first copies on the wire were accepted");

    validator.delayMs = 0;
    const second = runWorker(lab.env(urls, { LOG_LEVEL: "warn" }));
    try {
      await waitFor(
        async () => validator.accepted.size === ids.length && (await lab.depth()) === 0,
        "the queue finished by the next worker",
      );
    } finally {
      await second.stop();
    }
    const twice = [...validator.accepted].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], "no message_id submitted twice");
    assert.deepEqual(await lab.drainDlq(), []);
  } finally {
    await enrich.close();
    await validator.close();
    await lab.close();
  }
});
