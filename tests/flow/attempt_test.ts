/** Attempt, alone: a profile, the unknown-user policy, the ownership checks, the submission. */
import assert from "node:assert/strict";
import { Attempt, type AttemptPorts } from "../../src/flow/attempt.ts";
import { RetryingCall } from "../../src/flow/retrying_call.ts";
import { newContext } from "../../src/flow/message_context.ts";
import type { UnknownUserPolicy } from "../../src/domain/outcome.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import { HttpError } from "../../src/lib/errors.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { QUIET_LOGGER } from "../support/quiet_logger.ts";
import { oneMessage } from "../support/pipeline_rig.ts";
import { untraced } from "../support/trace_kit.ts";

const MESSAGE = { message_id: "m-1", user_id: "7", event_ts: 1, payload: {} };

function attempt(ports: Partial<AttemptPorts>, policy: UnknownUserPolicy = "submit") {
  const clock = new FakeClock();
  const submitted: string[] = [];
  const calls = new RetryingCall(30, {
    metrics: createSluiceMetrics(),
    logger: QUIET_LOGGER,
    clock,
  });
  const it = new Attempt(
    {
      lookup: () => Promise.resolve({ status: "ok", profile: { user_id: "7", tier: "a" } }),
      cached: () => undefined,
      submit: (
        document,
      ) => (submitted.push(document), Promise.resolve({ accepted: true, status: 200 })),
      isStale: () => false,
      ...ports,
    },
    calls,
    QUIET_LOGGER,
    policy,
  );
  const ctx = newContext(
    oneMessage(),
    clock.monotonic(),
    { messageId: "m-1", userId: "7" },
    untraced(),
  );
  const run = (lock?: { messageId: string; receiptHandle: string; held: boolean }) =>
    it.run(MESSAGE, ctx, new AbortController().signal, lock);
  return { run, submitted };
}

Deno.test("attempt: a cached profile is submitted without a lookup; accepted", async () => {
  let lookups = 0;
  const a = attempt({
    cached: () => ({ status: "ok", profile: { user_id: "7", tier: "c" } }),
    lookup: () => (lookups++, Promise.reject(new Error("not asked"))),
  });
  assert.deepEqual(await a.run(), { kind: "accepted" });
  assert.equal(lookups, 0);
  assert.match(a.submitted[0]!, /"tier":"c"/);
});

Deno.test("attempt: an unknown user is submitted with user null under submit, a verdict otherwise", async () => {
  const unknown = { lookup: () => Promise.resolve({ status: "unknown_user" as const }) };
  const submit = attempt(unknown, "submit");
  assert.deepEqual(await submit.run(), { kind: "accepted" });
  assert.match(submit.submitted[0]!, /"user":null/);
  for (const policy of ["dead-letter", "drop"] as const) {
    const other = attempt(unknown, policy);
    assert.deepEqual(await other.run(), { kind: "unknown_user" });
    assert.deepEqual(other.submitted, []);
  }
});

Deno.test("attempt: a stale receipt or a lock that may lapse is never submitted", async () => {
  const stale = attempt({ isStale: () => true });
  assert.deepEqual(await stale.run(), { kind: "stale" });
  const lapsing = attempt({ maySubmit: () => false });
  const lock = { messageId: "m-1", receiptHandle: "h-1", held: true };
  assert.deepEqual(await lapsing.run(lock), { kind: "lock_lost" });
  assert.deepEqual([...stale.submitted, ...lapsing.submitted], []);
  const held = attempt({ maySubmit: () => true });
  assert.deepEqual(await held.run(lock), { kind: "accepted" });
});

Deno.test("attempt: a rejection carries the validator's reason; a spent budget says which call gave up", async () => {
  const rejected = attempt({
    submit: () => Promise.resolve({ accepted: false, status: 422, reason: "bad segment" }),
  });
  assert.deepEqual(await rejected.run(), { kind: "rejected", reason: "HTTP 422: bad segment" });
  const down = attempt({ submit: () => Promise.reject(new HttpError("validator", 503, "down")) });
  const verdict = await down.run();
  assert.equal(verdict.kind, "gave_up");
  if (verdict.kind === "gave_up") {
    assert.deepEqual([verdict.target, verdict.category, verdict.validator5xx], [
      "validator",
      "TRANSIENT",
      true,
    ]);
  }
  const lookupDown = attempt({
    lookup: () => Promise.reject(new HttpError("enrichment", 400, "bad id")),
  });
  const permanent = await lookupDown.run();
  assert.equal(permanent.kind === "gave_up" && permanent.category, "PERMANENT");
});
