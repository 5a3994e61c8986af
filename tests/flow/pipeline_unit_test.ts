/**
 * Pipeline rows that need a clock: driven with fakes for SQS, the settler and
 * the downstreams, and a clock that moves only when the pipeline sleeps.
 */
import assert from "node:assert/strict";
import { HttpError } from "../../src/lib/errors.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { Pipeline, type PipelineOptions } from "../../src/flow/pipeline.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";

function harness(
  overrides: Partial<PipelineOptions> & {
    receiveCount?: number;
    /** Added to the wall clock only (an NTP step); the monotonic clock is not affected. */
    wallOffsetMs?: () => number;
  },
) {
  let clock = 1_000_000;
  const work = new AbortController();
  const settled: Array<{ kind: string; args: unknown[] }> = [];
  const message: SqsMessage = {
    messageId: "sqs-1",
    receiptHandle: "h-1",
    body: JSON.stringify({ message_id: "m-1", user_id: "7", event_ts: 1, payload: {} }),
    attributes: {
      ApproximateReceiveCount: String(overrides.receiveCount ?? 1),
      SentTimestamp: "0",
    },
    messageAttributes: {},
  };
  let delivered = false;
  const intake = new AbortController();
  const options: PipelineOptions = {
    queueUrl: "http://sqs.local/000/q",
    maxBatch: 10,
    receiveWaitSeconds: 0,
    visibilityTimeoutSeconds: 30,
    maxInFlight: 10,
    deleteOn4xx: false,
    deleteOn5xx: false,
    unknownUserPolicy: "submit",
    dedupTtlSeconds: 3600,
    maxReceiveCount: 3,
    pollers: 1,
    sqs: {
      receiveMessage: () => {
        if (delivered) {
          intake.abort();
          return Promise.resolve([]);
        }
        delivered = true;
        return Promise.resolve([message]);
      },
    },
    settler: {
      hasDlq: true,
      delete: (...args) => (settled.push({ kind: "delete", args }), Promise.resolve("done")),
      changeVisibility: (
        ...args
      ) => (settled.push({ kind: "visibility", args }), Promise.resolve("done")),
      deadLetter: (
        ...args
      ) => (settled.push({ kind: "dead_letter", args }), Promise.resolve("done")),
      requeue: (...args) => (settled.push({ kind: "requeue", args }), Promise.resolve("done")),
    },
    heartbeat: { track: () => {}, untrack: () => {} },
    lookup: () => Promise.resolve({ status: "ok", profile: { user_id: "7" } }),
    submit: () => Promise.resolve({ accepted: true, status: 200 }),
    metrics: createSluiceMetrics(),
    logger: createLogger({ level: "error", write: () => {} }),
    now: () => clock + (overrides.wallOffsetMs?.() ?? 0),
    monotonic: () => clock,
    random: () => 0.5,
    // Time passes only when the pipeline waits.
    sleep: (ms) => {
      clock += ms;
      return Promise.resolve();
    },
    ...overrides,
  };
  const pipeline = new Pipeline(options);
  return {
    settled,
    /** Ends the shutdown grace. */
    work,
    /** Ends intake (the stop begins). */
    intake,
    message,
    run: async () => {
      await pipeline.run(intake.signal, work.signal);
      await pipeline.drain();
    },
    elapsedMs: () => clock - 1_000_000,
  };
}

const down = () => Promise.reject(new HttpError("validator", 503, "down"));

Deno.test("pipeline: a transient failure on an early receive is released with backoff", async () => {
  const h = harness({ submit: down, receiveCount: 1 });
  await h.run();
  assert.deepEqual(h.settled.map((s) => s.kind), ["visibility"]);
  assert.equal(h.settled[0]?.args[1], 10, "first release: 10 s");
});

Deno.test("pipeline: on its last receive a failing message is held, then dead-lettered with a reason at 12 h", async () => {
  const h = harness({ submit: down, receiveCount: 3 });
  await h.run();
  assert.deepEqual(
    h.settled.map((s) => s.kind),
    ["dead_letter"],
    "never released to the redrive policy",
  );
  const [handle, body, category, reason] = h.settled[0]!.args as string[];
  assert.equal(handle, "h-1");
  assert.match(body!, /"message_id":"m-1"/);
  assert.equal(category, "TRANSIENT");
  assert.match(reason!, /after 12 h/);
  assert.ok(
    h.elapsedMs() > 11 * 3600_000 && h.elapsedMs() < 12 * 3600_000,
    `${h.elapsedMs()} ms held`,
  );
});

Deno.test("pipeline: a held message that recovers is accepted and deleted", async () => {
  let calls = 0;
  const h = harness({
    receiveCount: 3,
    submit: () => ++calls < 50 ? down() : Promise.resolve({ accepted: true, status: 200 }),
  });
  await h.run();
  assert.deepEqual(h.settled.map((s) => s.kind), ["delete"]);
  assert.equal(calls, 50);
});

for (const hours of [6, 12]) {
  Deno.test(`also: SQS_VISIBILITY_TIMEOUT_SECONDS of ${hours} h does not dead-letter a held message early`, async () => {
    const h = harness({ submit: down, receiveCount: 3, visibilityTimeoutSeconds: hours * 3600 });
    await h.run();
    assert.deepEqual(h.settled.map((s) => s.kind), ["dead_letter"]);
    assert.match(String(h.settled[0]!.args[3]), /after 12 h/);
    assert.ok(
      h.elapsedMs() > 11.5 * 3600_000 && h.elapsedMs() < 12 * 3600_000,
      `held ${(h.elapsedMs() / 3600_000).toFixed(2)} h`,
    );
  });
}

Deno.test("also: a wall-clock step forward does not end a hold early (monotonic clock)", async () => {
  let calls = 0;
  const h = harness({
    receiveCount: 3,
    // 13 h of wall clock vanish after the fifth call (an NTP step); the monotonic clock goes on.
    wallOffsetMs: () => (calls > 5 ? 13 * 3600_000 : 0),
    submit: () => ++calls < 50 ? down() : Promise.resolve({ accepted: true, status: 200 }),
  });
  await h.run();
  assert.deepEqual(h.settled.map((s) => s.kind), ["delete"], "held until it was accepted");
  assert.equal(calls, 50);
});

const shutdownRows: Array<[string, Partial<PipelineOptions> & { receiveCount: number }, string]> = [
  ["an early receive is released (visibility 0)", { receiveCount: 1 }, "visibility"],
  ["the last allowed receive is re-queued", { receiveCount: 3 }, "requeue"],
  ["maxReceiveCount 1: the first receive is re-queued", {
    receiveCount: 1,
    maxReceiveCount: 1,
  }, "requeue"],
  ["a RedrivePolicy not read yet: re-queued", {
    receiveCount: 1,
    redriveKnown: () => false,
  }, "requeue"],
  ["a queue without a RedrivePolicy: released", {
    receiveCount: 5,
    maxReceiveCount: undefined,
  }, "visibility"],
];
for (const [name, overrides, kind] of shutdownRows) {
  Deno.test(`defect 3: shutdown never hands a message on its last receive to the redrive policy: ${name}`, async () => {
    const holder: { work?: AbortController } = {};
    const h = harness({
      ...overrides,
      // The grace ends while the validator is failing.
      submit: () => {
        holder.work!.abort();
        return down();
      },
    });
    holder.work = h.work;
    await h.run();
    assert.deepEqual(h.settled.map((s) => s.kind), [kind]);
    if (kind === "visibility") assert.equal(h.settled[0]!.args[1], 0, "released at once");
    if (kind === "requeue") {
      const [message] = h.settled[0]!.args as Array<{ receiptHandle: string; body: string }>;
      assert.equal(message!.receiptHandle, "h-1");
      assert.match(message!.body, /"message_id":"m-1"/);
    }
  });
}

Deno.test("defect 3: a long poll that returns after the stop began is handed back, not dropped or worked on", async () => {
  const holder: { h?: ReturnType<typeof harness> } = {};
  const signals: AbortSignal[] = [];
  let submitted = 0;
  const h = harness({
    maxReceiveCount: 1,
    submit: () => (submitted++, Promise.resolve({ accepted: true, status: 200 })),
    sqs: {
      // SIGTERM lands while this poll is open; SQS answers it afterwards with a message.
      receiveMessage: (p) => {
        signals.push(p.signal!);
        holder.h!.intake.abort();
        return Promise.resolve([holder.h!.message]);
      },
    },
  });
  holder.h = h;
  await h.run();
  assert.equal(signals.length, 1);
  assert.equal(signals[0]!.aborted, false, "the open poll was not cut off by the stop");
  assert.equal(submitted, 0, "nothing new starts after the stop");
  assert.deepEqual(h.settled.map((s) => s.kind), ["requeue"], "its last receive: re-queued");
});
