/** Downstream redirects as the app sees them: reported once per Location, named on /readyz. */
import assert from "node:assert/strict";
import { describeRedirect, RedirectWatch } from "../../src/app/redirects.ts";
import { RedirectError } from "../../src/lib/errors.ts";

Deno.test("redirects: RedirectWatch reports each Location once and clears on a non-3xx answer", () => {
  const reported: string[] = [];
  const watch = new RedirectWatch((e) => reported.push(`${e.target} ${e.location}`));
  const hop = new RedirectError("validator", 302, "https://login.example/");
  for (let i = 0; i < 50; i++) {
    watch.redirected(hop);
    watch.answered("validator", "302");
  }
  assert.deepEqual(reported, ["validator https://login.example/"], "logged once, not per message");
  assert.deepEqual(
    watch.current().map((e) => describeRedirect("VALIDATOR_URL", e)),
    ["VALIDATOR_URL redirects to https://login.example/ (HTTP 302)"],
  );
  watch.answered("validator", "timeout");
  assert.equal(watch.current().length, 1, "a timeout says nothing about the redirect");
  watch.answered("validator", "200");
  assert.deepEqual(watch.current(), []);
  watch.redirected(hop);
  assert.equal(reported.length, 1, "the same Location is not logged again");
});
