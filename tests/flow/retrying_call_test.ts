import assert from "node:assert/strict";
import { QUIET_LOGGER } from "../support/quiet_logger.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import { HttpError, LocalError } from "../../src/lib/errors.ts";
import { newContext } from "../../src/flow/message_context.ts";
import { RetryingCall } from "../../src/flow/retrying_call.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { untraced } from "../support/trace_kit.ts";

function rig() {
  const clock = new FakeClock();
  const metrics = createSluiceMetrics();
  const calls = new RetryingCall(30, {
    metrics,
    logger: QUIET_LOGGER,
    clock,
  });
  const sqs = {
    messageId: "s",
    receiptHandle: "r",
    body: "{}",
    attributes: {},
    messageAttributes: {},
  };
  const ctx = newContext(sqs as never, clock.now(), {}, untraced());
  const retries = () => metrics.retries.get({ target: "validator" }) ?? 0;
  return { clock, calls, ctx, retries };
}

/** A call that fails with each of `errors` in turn, then answers "ok". */
function failing(errors: unknown[]) {
  let made = 0;
  const fn = () => {
    const error = errors[made++];
    return error === undefined ? Promise.resolve("ok") : Promise.reject(error);
  };
  return { fn, made: () => made };
}

Deno.test("retrying call: a first success makes one call, no sleep and no retry", async () => {
  const { clock, calls, ctx, retries } = rig();
  const { fn, made } = failing([]);
  assert.equal(await calls.run("validator", fn, ctx, new AbortController().signal), "ok");
  assert.deepEqual([made(), clock.sleeps, retries()], [1, [], 0]);
});

Deno.test("retrying call: a transient failure is retried after the first backoff, and counted", async () => {
  const { clock, calls, ctx, retries } = rig();
  const { fn, made } = failing([
    new HttpError("validator", 503, "busy"),
    new HttpError("validator", 503, "busy"),
  ]);
  assert.equal(await calls.run("validator", fn, ctx, new AbortController().signal), "ok");
  // random 0.5 × 100 ms, then 0.5 × 200 ms: the same delays retry() gives attempts 1 and 2.
  assert.deepEqual([made(), clock.sleeps, retries()], [3, [50, 100], 2]);
});

Deno.test("retrying call: a Retry-After on the first failure sets the first delay", async () => {
  const { clock, calls, ctx } = rig();
  const busy = new HttpError("validator", 429, "slow down", { retryAfterMs: 2000 });
  const { fn } = failing([busy]);
  assert.equal(await calls.run("validator", fn, ctx, new AbortController().signal), "ok");
  assert.deepEqual(clock.sleeps, [2000]);
});

Deno.test("retrying call: a permanent error is thrown after one call, without a sleep", async () => {
  const { clock, calls, ctx, retries } = rig();
  const bad = new LocalError("Cannot call validator: received an invalid URL");
  const { fn, made } = failing([bad]);
  const error = await calls.run("validator", fn, ctx, new AbortController().signal).catch((e) => e);
  assert.equal(error, bad);
  assert.deepEqual([made(), clock.sleeps, retries()], [1, [], 0]);
});

Deno.test("retrying call: when the grace ends during the first call, its error is thrown, not retried", async () => {
  const { clock, calls, ctx } = rig();
  const work = new AbortController();
  const failure = new HttpError("validator", 503, "busy");
  const fn = () => {
    work.abort(new Error("grace over"));
    return Promise.reject(failure);
  };
  assert.equal(await calls.run("validator", fn, ctx, work.signal).catch((e) => e), failure);
  assert.deepEqual(clock.sleeps, []);
});
