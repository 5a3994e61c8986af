/** RedriveWatcher: "not read yet" is its own state; retried with capped, jittered backoff. */
import assert from "node:assert/strict";
import { SqsError } from "../../src/lib/errors.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { RedriveWatcher } from "../../src/flow/redrive.ts";
import type { Clock } from "../../src/lib/clock.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** A fake clock whose sleeps are `sleep`'s. */
function clockWith(sleep: Clock["sleep"], random = () => 0.5): Clock {
  return { ...new FakeClock(), sleep, random };
}

const POLICY = JSON.stringify({
  deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
  maxReceiveCount: 4,
});
const config = { queueUrl: "http://127.0.0.1:1/000000000000/main", dlqQueueUrl: undefined };
const denied = () => new SqsError("GetQueueAttributes", "AccessDenied", 403, "not authorized");

function fakeSqs(failures: { attributes: number; url?: number }) {
  let attributeCalls = 0;
  let urlCalls = 0;
  const queue = { policy: POLICY };
  return {
    queue,
    calls: () => ({ attributes: attributeCalls, url: urlCalls }),
    getQueueAttributes: () =>
      ++attributeCalls <= failures.attributes
        ? Promise.reject(denied())
        : Promise.resolve({ RedrivePolicy: queue.policy }),
    getQueueUrl: () =>
      ++urlCalls <= (failures.url ?? 0)
        ? Promise.reject(new SqsError("GetQueueUrl", "AccessDenied", 403, "no"))
        : Promise.resolve("http://127.0.0.1:1/000000000000/dlq"),
  };
}

/** Reads again every REFRESH_MS; the sleeps before a refresh are not recorded. */
const REFRESH_MS = 60_000;

/**
 * A watcher on a fake clock; `stop` aborts once it waits for its first refresh (the policy
 * known), so its background ends there.
 */
function watcher(
  sqs: ReturnType<typeof fakeSqs>,
  sleeps: number[],
  lines: string[] = [],
  stop = new AbortController(),
) {
  return new RedriveWatcher({
    sqs,
    config,
    logger: createLogger({ write: (l) => lines.push(l), clock: new FakeClock({ start: 0 }) }),
    baseDelayMs: 1000,
    maxDelayMs: 8000,
    refreshMs: REFRESH_MS,
    clock: clockWith((ms) => {
      if (ms < REFRESH_MS) return (sleeps.push(Math.round(ms)), Promise.resolve());
      stop.abort();
      return Promise.reject(stop.signal.reason);
    }, () => 0.999),
  });
}

Deno.test("redrive: RedriveWatcher: an AccessDenied at startup leaves it unknown (not 'no policy'), then it is retried until read", async () => {
  const sqs = fakeSqs({ attributes: 6 });
  const sleeps: number[] = [];
  const lines: string[] = [];
  const stop = new AbortController();
  const w = watcher(sqs, sleeps, lines, stop);
  const { background } = await w.start(stop.signal);
  assert.equal(w.state.known, false, "after the first read failed");
  assert.match(w.state.pending ?? "", /AccessDenied/);
  await background;
  assert.deepEqual(
    { known: w.state.known, max: w.state.maxReceiveCount, dlq: w.state.dlqUrl },
    { known: true, max: 4, dlq: "http://127.0.0.1:1/000000000000/dlq" },
  );
  assert.equal(w.state.pending, undefined);
  assert.equal(
    sqs.calls().attributes,
    7,
    "a non-retryable error is still retried in the background",
  );
  // Doubling from 1 s, capped at 8 s (random 0.999 ≈ the cap).
  assert.deepEqual(sleeps, [999, 1998, 3996, 7992, 7992, 7992]);
  assert.ok(lines.some((l) => l.includes("cannot read the queue's RedrivePolicy yet")));
  assert.ok(lines.some((l) => l.includes("read the queue's RedrivePolicy\"")));
});

Deno.test("redrive: RedriveWatcher: the background retries stop on the AbortSignal", async () => {
  const sqs = fakeSqs({ attributes: 1000 });
  const controller = new AbortController();
  let sleeps = 0;
  const w = new RedriveWatcher({
    sqs,
    config,
    logger: createLogger({ write: () => {}, clock: new FakeClock({ start: 0 }) }),
    clock: clockWith(() => (++sleeps === 3 && controller.abort(), Promise.resolve())),
  });
  const { background } = await w.start(controller.signal);
  await background;
  assert.equal(w.state.known, false);
  assert.ok(sqs.calls().attributes <= 4, `${sqs.calls().attributes} reads`);
});

Deno.test("redrive: RedriveWatcher: a policy read but a DLQ URL not found yet is known, and the DLQ is looked up again", async () => {
  const sqs = fakeSqs({ attributes: 0, url: 1 });
  const stop = new AbortController();
  const w = watcher(sqs, [], [], stop);
  const { background } = await w.start(stop.signal);
  assert.equal(w.state.known, true);
  assert.equal(w.state.maxReceiveCount, 4);
  assert.equal(w.state.dlqUrl, undefined);
  assert.match(w.state.pending ?? "", /DLQ URL not found yet/);
  await background;
  assert.equal(w.state.dlqUrl, "http://127.0.0.1:1/000000000000/dlq");
});

Deno.test("redrive: RedriveWatcher: a known policy is read again every refreshMs; a lowered maxReceiveCount takes effect", async () => {
  const sqs = fakeSqs({ attributes: 0 });
  const stop = new AbortController();
  const waits: number[] = [];
  const lines: string[] = [];
  const w = new RedriveWatcher({
    sqs,
    config,
    logger: createLogger({ write: (l) => lines.push(l), clock: new FakeClock({ start: 0 }) }),
    refreshMs: REFRESH_MS,
    clock: clockWith((ms) => {
      waits.push(ms);
      // The operator lowers maxReceiveCount while the worker runs; the third wait ends the test.
      if (waits.length === 1) {
        sqs.queue.policy = POLICY.replace('"maxReceiveCount":4', '"maxReceiveCount":2');
      }
      if (waits.length === 3) stop.abort();
      return stop.signal.aborted ? Promise.reject(stop.signal.reason) : Promise.resolve();
    }),
  });
  const { background } = await w.start(stop.signal);
  assert.equal(w.state.maxReceiveCount, 4);
  await background;
  assert.equal(w.state.maxReceiveCount, 2, "read again after the refresh period");
  assert.deepEqual(waits, [REFRESH_MS, REFRESH_MS / 30, REFRESH_MS]);
  assert.ok(lines.some((l) => l.includes("the queue's RedrivePolicy changed")));
});

Deno.test("redrive: RedriveWatcher: refresh() reads the policy again before the period is over", async () => {
  const sqs = fakeSqs({ attributes: 0 });
  const stop = new AbortController();
  let refreshWait: (() => void) | undefined;
  const w = new RedriveWatcher({
    sqs,
    config,
    logger: createLogger({ write: () => {}, clock: new FakeClock({ start: 0 }) }),
    refreshMs: REFRESH_MS,
    clock: clockWith((ms, signal) => {
      if (ms !== REFRESH_MS) return Promise.resolve();
      if (sqs.calls().attributes >= 2) stop.abort();
      if (stop.signal.aborted) return Promise.reject(stop.signal.reason);
      // A long wait that only refresh() (its signal) ends.
      return new Promise((_, reject) => {
        refreshWait = () => reject(new Error("woken"));
        signal?.addEventListener("abort", refreshWait, { once: true });
      });
    }),
  });
  const { background } = await w.start(stop.signal);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.ok(refreshWait, "waiting for the period");
  w.refresh();
  await background;
  assert.equal(sqs.calls().attributes, 2, "one more read, long before the period ended");
});
