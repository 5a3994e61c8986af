import assert from "node:assert/strict";
import { HttpError } from "../../src/lib/errors.ts";
import { backoffDelay, parseRetryAfter, retry, type RetryOptions } from "../../src/lib/retry.ts";
import { sleep } from "../../src/lib/clock.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** Options on a fake clock whose sleep advances time at once; each delay is kept. */
function fakeTime(start = 1_000_000, auto = true) {
  const clock = new FakeClock({ start, auto, random: () => 1 });
  const options: RetryOptions = { clock };
  return { options, clock, sleeps: clock.sleeps, advance: clock.advance };
}

const transient = () => new HttpError("enrichment", 503, "");

Deno.test("retry: backoffDelay is full jitter over a capped exponential", () => {
  assert.equal(backoffDelay(1, 100, 5000, () => 1), 100);
  assert.equal(backoffDelay(2, 100, 5000, () => 1), 200);
  assert.equal(backoffDelay(4, 100, 5000, () => 0.5), 400);
  assert.equal(backoffDelay(10, 100, 5000, () => 1), 5000);
  assert.equal(backoffDelay(3, 100, 5000, () => 0), 0);
  for (let i = 0; i < 50; i++) {
    const d = backoffDelay(3, 100, 5000, Math.random);
    assert.ok(d >= 0 && d < 400, `${d}`);
  }
});

Deno.test("retry: parseRetryAfter reads delta seconds", () => {
  assert.equal(parseRetryAfter("3", 0), 3000);
  assert.equal(parseRetryAfter(" 0 ", 0), 0);
  assert.equal(parseRetryAfter("1.5", 0), 1500);
  assert.equal(parseRetryAfter("-4", 0), 0);
});

Deno.test("retry: parseRetryAfter reads an HTTP date relative to now", () => {
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
});

Deno.test("retry: parseRetryAfter gives undefined for absent or invalid values", () => {
  assert.equal(parseRetryAfter(undefined, 0), undefined);
  assert.equal(parseRetryAfter(null, 0), undefined);
  assert.equal(parseRetryAfter("", 0), undefined);
  assert.equal(parseRetryAfter("soon", 0), undefined);
  assert.equal(parseRetryAfter("12 34", 0), undefined);
});

Deno.test("retry: returns the first success and passes the attempt number", async () => {
  const { options, sleeps } = fakeTime();
  const seen: number[] = [];
  const result = await retry((attempt) => {
    seen.push(attempt);
    if (attempt < 3) return Promise.reject(transient());
    return Promise.resolve("done");
  }, options);
  assert.equal(result, "done");
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(sleeps, [100, 200]);
});

Deno.test("retry: stops at maxAttempts and rethrows the last error", async () => {
  const { options, sleeps } = fakeTime();
  const errors: Error[] = [];
  await assert.rejects(
    retry(() => {
      const err = transient();
      errors.push(err);
      return Promise.reject(err);
    }, { ...options, maxAttempts: 3 }),
    (err) => err === errors[2],
  );
  assert.equal(errors.length, 3);
  assert.equal(sleeps.length, 2);
});

Deno.test("retry: does not retry a non-retriable error", async () => {
  const { options, sleeps } = fakeTime();
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      return Promise.reject(new HttpError("validator", 400, "bad"));
    }, options),
    HttpError,
  );
  assert.equal(calls, 1);
  assert.deepEqual(sleeps, []);
});

Deno.test("retry: uses a custom isRetriable", async () => {
  const { options } = fakeTime();
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      return Promise.reject(new Error(calls === 1 ? "again" : "final"));
    }, { ...options, isRetriable: (err) => (err as Error).message === "again" }),
    /final/,
  );
  assert.equal(calls, 2);
});

Deno.test("retry: calls onRetry before each sleep with error, attempt and delay", async () => {
  const { options, sleeps } = fakeTime();
  const calls: Array<[string, number, number]> = [];
  await assert.rejects(
    retry((attempt) => Promise.reject(new HttpError("x", 500, `a${attempt}`)), {
      ...options,
      maxAttempts: 3,
      onRetry: (err, attempt, delayMs) => {
        assert.equal(sleeps.length, attempt - 1, "onRetry runs before the sleep");
        calls.push([(err as HttpError).body, attempt, delayMs]);
      },
    }),
  );
  assert.deepEqual(calls, [["a1", 1, 100], ["a2", 2, 200]]);
});

Deno.test("retry: honours retryAfterMs as the delay floor", async () => {
  const { options, sleeps } = fakeTime();
  let calls = 0;
  await retry(() => {
    calls++;
    if (calls === 1) {
      return Promise.reject(new HttpError("x", 429, "", { retryAfterMs: 3000 }));
    }
    if (calls === 2) return Promise.reject(new HttpError("x", 429, "", { retryAfterMs: 10 }));
    return Promise.resolve();
  }, options);
  // 3000 > backoff 100; backoff 200 > 10.
  assert.deepEqual(sleeps, [3000, 200]);
});

Deno.test("retry: stops when the next delay would end past the budget", async () => {
  const { options, sleeps, advance } = fakeTime();
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      advance(50); // each attempt takes 50 ms
      return Promise.reject(transient());
    }, { ...options, budgetMs: 500 }),
    HttpError,
  );
  // t=50 sleep 100 -> t=150; t=200 sleep 200 -> t=400; t=450 + 400 > 500: stop.
  assert.equal(calls, 3);
  assert.deepEqual(sleeps, [100, 200]);
});

Deno.test("retry: stops when Retry-After exceeds the remaining budget", async () => {
  const { options, sleeps } = fakeTime();
  let calls = 0;
  const err = new HttpError("x", 503, "", { retryAfterMs: 2000 });
  await assert.rejects(
    retry(() => {
      calls++;
      return Promise.reject(err);
    }, { ...options, budgetMs: 1500 }),
    (e) => e === err,
  );
  assert.equal(calls, 1);
  assert.deepEqual(sleeps, []);
});

Deno.test("retry: rejects with signal.reason when aborted during a sleep", async () => {
  const { options } = fakeTime(1_000_000, false);
  const controller = new AbortController();
  const reason = new Error("shutdown");
  let calls = 0;
  const promise = retry(() => {
    calls++;
    return Promise.reject(transient());
  }, {
    ...options,
    signal: controller.signal,
    baseDelayMs: 60_000,
    maxDelayMs: 60_000,
    // The sleep has started listening by the time this microtask runs.
    onRetry: () => queueMicrotask(() => controller.abort(reason)),
  });
  await assert.rejects(promise, (err) => err === reason);
  assert.equal(calls, 1);
});

Deno.test("retry: does not start an attempt once aborted", async () => {
  const reason = new Error("gone");
  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      return Promise.resolve(1);
    }, { ...fakeTime().options, signal: AbortSignal.abort(reason) }),
    (err) => err === reason,
  );
  assert.equal(calls, 0);
});

Deno.test("retry: rethrows the attempt's error without sleeping if aborted meanwhile", async () => {
  const { options, sleeps } = fakeTime();
  const controller = new AbortController();
  const err = transient();
  await assert.rejects(
    retry(() => {
      controller.abort(new Error("stop"));
      return Promise.reject(err);
    }, { ...options, signal: controller.signal }),
    (e) => e === err,
  );
  assert.deepEqual(sleeps, []);
});

Deno.test("retry: the system clock's sleep resolves after the timer and rejects on abort", async () => {
  await sleep(1);
  const controller = new AbortController();
  const reason = new Error("abort");
  const p = sleep(60_000, controller.signal);
  controller.abort(reason);
  await assert.rejects(p, (err) => err === reason);
  await assert.rejects(sleep(10, AbortSignal.abort(reason)), (err) => err === reason);
});

Deno.test("retry: the fast path: a first attempt that succeeds reads the clock once and sleeps never", async () => {
  let reads = 0;
  const clock = new FakeClock();
  const counting = { ...clock, monotonic: () => (reads++, clock.monotonic()) };
  assert.equal(await retry(() => Promise.resolve("ok"), { clock: counting }), "ok");
  assert.equal(reads, 1);
  assert.deepEqual(clock.sleeps, []);
});
