/**
 * "A redirect is taken as acceptance" must never happen: no downstream call
 * follows a redirect, against real loopback servers.
 */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { EnrichClient } from "../../src/adapters/enrich_client.ts";
import { redirectOf } from "../../src/lib/guarded_fetch.ts";
import { ValidatorClient } from "../../src/adapters/validator_client.ts";
import { categoryOf, isRetriable, RedirectError } from "../../src/lib/errors.ts";
import { serveJson } from "../support/lab_env.ts";

/** `/from...` redirects with `status` to `to`; everything else answers 200 and is counted. */
function redirecting(status: number, to: string) {
  const landed: string[] = [];
  const server = serveJson(async (request, url) => {
    await request.text();
    if (url.pathname.startsWith("/v1/") || url.pathname === "/ingest") {
      return new Response("moved", { status, headers: { location: to } });
    }
    landed.push(`${request.method} ${url.pathname}`);
    return Response.json({
      status: "accepted",
      user_id: "42",
      AccessKeyId: "ASIA-FAKE",
      SecretAccessKey: "not-a-secret",
      Token: "t",
    });
  });
  return Object.assign(server, { landed });
}

for (const status of [301, 302, 307, 308]) {
  Deno.test(`a redirect is taken as acceptance: the validator answering ${status} to a POST is never accepted`, async () => {
    const server = redirecting(status, "/login");
    const redirected: RedirectError[] = [];
    try {
      const validator = new ValidatorClient({
        clock: systemClock,
        url: `${server.url}/ingest`,
        timeoutMs: 2000,
        onRedirect: (e) => redirected.push(e),
      });
      const error = await validator.submit({ message_id: "m-1" }).then(() => undefined, (e) => e);
      assert.ok(error instanceof RedirectError, `expected RedirectError, got ${error}`);
      assert.equal(error.status, status);
      assert.equal(error.location, `${server.url}/login`);
      assert.equal(error.target, "validator");
      // A failed call: retried, and counted by the breaker (isRetriable is its isFailure).
      assert.equal(categoryOf(error), "TRANSIENT");
      assert.equal(isRetriable(error), true);
      assert.deepEqual(server.landed, [], "the redirect was not followed");
      assert.equal(redirected.length, 1);
    } finally {
      await server.close();
    }
  });
}

Deno.test("a redirect is taken as acceptance: the enrichment API redirecting to an instance-metadata path never yields a profile", async () => {
  const server = redirecting(302, "/latest/meta-data/iam/security-credentials/sluice-role");
  try {
    const enrich = new EnrichClient({ clock: systemClock, baseUrl: server.url, timeoutMs: 2000 });
    const single = await enrich.getUser("42").then((p) => p, (e) => e);
    assert.ok(single instanceof RedirectError, `a profile came back: ${JSON.stringify(single)}`);
    assert.match(single.location, /\/latest\/meta-data\//);
    const batch = await enrich.getUsers(["42"]).then((p) => p, (e) => e);
    assert.ok(batch instanceof RedirectError, "the batch lookup follows no redirect either");
    assert.deepEqual(server.landed, [], "nothing was fetched from the metadata path");
  } finally {
    await server.close();
  }
});

Deno.test("a redirect is taken as acceptance: an opaque redirect (spec fetch) is a redirect too", () => {
  const opaque = { status: 0, type: "opaqueredirect" as ResponseType, headers: new Headers() };
  assert.deepEqual(redirectOf(opaque, "http://v/ingest"), { status: 0, location: "" });
  const plain = { status: 200, type: "basic" as ResponseType, headers: new Headers() };
  assert.equal(redirectOf(plain, "http://v/ingest"), undefined);
  const withUser = {
    status: 302,
    type: "basic" as ResponseType,
    headers: new Headers({ location: "https://user:pw@login.example/x?y=1" }),
  };
  assert.deepEqual(redirectOf(withUser, "http://v/ingest"), {
    status: 302,
    location: "https://login.example/x?y=1",
  });
});
