/**
 * Fault: a stop whose grace ends while submissions are on the wire, on a queue where every
 * receive is the last (maxReceiveCount 1), workers in process on fauxqs. A producer's second
 * copy waiting for its first copy must learn how the first ended before it is handed back:
 * handed back while the first is being accepted, the next worker would submit it again.
 */
import assert from "node:assert/strict";
import { runWorker, sendBodies, serveJson, startLabEnv, waitFor } from "../support/lab_env.ts";

const msg = (id: string) =>
  JSON.stringify({ message_id: id, user_id: `u-${id}`, event_ts: 1735689600, payload: {} });

function downstreams() {
  const validator = { delayMs: 1500, onWire: 0, submitted: new Map<string, number>() };
  const enrich = serveJson(async (request, url) => {
    if (url.pathname === "/v1/users:batch") {
      const { user_ids } = await request.json() as { user_ids: string[] };
      return Response.json({
        users: user_ids.map((id) => ({ user_id: id, segment: "casual", meta: {} })),
        missing: [],
        errors: [],
        meta: {},
      });
    }
    await request.body?.cancel();
    return Response.json({ user_id: "u", segment: "casual", meta: {} });
  });
  const server = serveJson(async (request) => {
    const doc = await request.json() as { message_id: string };
    validator.onWire++;
    await new Promise((resolve) => setTimeout(resolve, validator.delayMs));
    validator.onWire--;
    validator.submitted.set(doc.message_id, (validator.submitted.get(doc.message_id) ?? 0) + 1);
    return Response.json({ status: "accepted" });
  });
  return {
    validator,
    urls: { enrich: enrich.url, validator: server.url },
    close: async () => {
      await enrich.close();
      await server.close();
    },
  };
}

Deno.test("stop copies: a producer's second copy waiting at the end of the grace is deleted as the duplicate it is, never submitted again", async () => {
  const lab = await startLabEnv({ maxReceiveCount: 1, visibility: 30 });
  const down = downstreams();
  try {
    const ids = Array.from({ length: 10 }, (_, i) => `c-${i}`);
    // Both copies of each message in one batch: they are received together.
    await sendBodies(lab, ids.flatMap((id) => [msg(id), msg(id)]));
    const first = runWorker(lab.env(down.urls, { LOG_LEVEL: "warn", MAX_IN_FLIGHT: "40" }));
    await waitFor(() => down.validator.onWire >= 5, "submissions on the wire");
    // The grace ends while the first copies are on the wire, their second copies waiting.
    await first.stop(200);
    assert.ok(down.validator.submitted.size > 0, "the first copies on the wire were accepted");

    down.validator.delayMs = 0;
    const second = runWorker(lab.env(down.urls, { LOG_LEVEL: "warn" }));
    try {
      await waitFor(
        async () => down.validator.submitted.size === ids.length && (await lab.depth()) === 0,
        "the queue finished by the next worker",
      );
    } finally {
      await second.stop();
    }
    const twice = [...down.validator.submitted].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], "no message_id submitted twice");
    assert.deepEqual(await lab.drainDlq(), []);
  } finally {
    await down.close();
    await lab.close();
  }
});
