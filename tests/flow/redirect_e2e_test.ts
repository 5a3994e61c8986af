/**
 * End to end: a validator that redirects every submission
 * (an http→https hop, a login proxy) never gets a message deleted.
 */
import assert from "node:assert/strict";
import { startEnrichFake } from "../support/fault_kit.ts";
import { runWorker, sendBodies, serveJson, startLabEnv, waitFor } from "../support/lab_env.ts";

Deno.test("a redirect is taken as acceptance: a validator answering 302 keeps the message, /readyz says VALIDATOR_URL redirects, logged once", async () => {
  const lab = await startLabEnv({});
  const landed: string[] = [];
  let submissions = 0;
  const enrich = startEnrichFake();
  const validator = serveJson(async (request, url) => {
    await request.text();
    if (url.pathname === "/ingest") {
      submissions++;
      return new Response("", { status: 302, headers: { location: "/sso/login" } });
    }
    landed.push(`${request.method} ${url.pathname}`);
    return new Response("welcome", { status: 200 });
  });
  try {
    await sendBodies(lab, [
      JSON.stringify({ message_id: "r1", user_id: "7", event_ts: 1, payload: {} }),
      JSON.stringify({ message_id: "r2", user_id: "7", event_ts: 1, payload: {} }),
    ]);
    const worker = runWorker(
      lab.env({ enrich: enrich.url, validator: validator.url }, { LOG_LEVEL: "warn" }),
    );
    let readyz = "";
    try {
      await waitFor(async () => {
        const answer = await worker.app.request("/readyz");
        readyz = await answer.text();
        return submissions >= 6 && answer.status === 503;
      }, "several redirected submissions and /readyz 503");
    } finally {
      await worker.stop(0);
    }
    assert.match(readyz, /VALIDATOR_URL redirects to http:\/\/127\.0\.0\.1:\d+\/sso\/login/);
    assert.deepEqual(landed, [], "the redirect was never followed");
    assert.equal(worker.metrics.messages.get({ outcome: "accepted" }), 0);
    assert.equal(await lab.depth(), 2, "both messages are still on the queue");
    assert.equal((await lab.drainDlq()).length, 0);
    const logged = worker.lines.filter((l) => l.includes("redirects are never followed"));
    assert.equal(logged.length, 1, `logged once per target, not per message: ${logged}`);
    assert.match(logged[0]!, /"location":"http:\/\/127\.0\.0\.1:\d+\/sso\/login"/);
  } finally {
    await enrich.close();
    await validator.close();
    await lab.close();
  }
});
