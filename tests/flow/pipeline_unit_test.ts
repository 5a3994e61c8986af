/**
 * Pipeline rows that need a clock: driven with fakes for SQS, the settler and
 * the downstreams, and a clock that moves only when the pipeline sleeps.
 */
import assert from "node:assert/strict";
import { HttpError } from "../../src/lib/errors.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { dedupeCapacity } from "../../src/flow/dedupe.ts";
import type { PipelinePorts } from "../../src/flow/pipeline.ts";
import type { IntakeSettings } from "../../src/flow/intake.ts";
import {
  deliverOnce,
  fakeSettler,
  oneMessage,
  type RigParts,
  testPipeline,
} from "../support/pipeline_rig.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";
import { FakeClock } from "../support/fake_clock.ts";

function harness(
  overrides: Partial<PipelinePorts> & {
    receiveCount?: number;
    maxReceiveCount?: number | undefined;
    intake?: Partial<IntakeSettings>;
    /** Added to the wall clock only (an NTP step); the monotonic clock is not affected. */
    wallOffsetMs?: () => number;
  },
) {
  const { receiveCount, maxReceiveCount, intake: intakeSettings, wallOffsetMs, ...ports } =
    overrides;
  const fake = new FakeClock({ start: 1_000_000 });
  // Time passes only when the pipeline waits (and a wait is never cut short).
  const clock = {
    ...fake,
    now: () => fake.now() + (wallOffsetMs?.() ?? 0),
    sleep: (ms: number) => fake.sleep(ms),
  };
  const work = new AbortController();
  const settled: Array<{ kind: string; args: unknown[] }> = [];
  const message = oneMessage(receiveCount);
  const queue = deliverOnce(() => [message]);
  const intake = queue.intake;
  const parts: RigParts = {
    ...("maxReceiveCount" in overrides ? { maxReceiveCount } : {}),
    ...(intakeSettings ? { intake: intakeSettings } : {}),
    ports: {
      sqs: queue.sqs,
      settler: fakeSettler((kind, args) => settled.push({ kind, args })),
      ...ports,
    },
    services: { clock },
  };
  const pipeline = testPipeline(parts);
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
    elapsedMs: () => fake.now() - 1_000_000,
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
  const [message, category, reason] = h.settled[0]!.args as [SqsMessage, string, string];
  assert.equal(message.receiptHandle, "h-1");
  assert.match(message.body, /"message_id":"m-1"/);
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
  Deno.test(`pipeline: SQS_VISIBILITY_TIMEOUT_SECONDS of ${hours} h does not dead-letter a held message early`, async () => {
    const h = harness({
      submit: down,
      receiveCount: 3,
      intake: { visibilityTimeoutSeconds: hours * 3600 },
    });
    await h.run();
    assert.deepEqual(h.settled.map((s) => s.kind), ["dead_letter"]);
    assert.match(String(h.settled[0]!.args[2]), /after 12 h/);
    assert.ok(
      h.elapsedMs() > 11.5 * 3600_000 && h.elapsedMs() < 12 * 3600_000,
      `held ${(h.elapsedMs() / 3600_000).toFixed(2)} h`,
    );
  });
}

Deno.test("pipeline: a wall-clock step forward does not end a hold early (monotonic clock)", async () => {
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

const shutdownRows: Array<
  [string, Parameters<typeof harness>[0] & { receiveCount: number }, string]
> = [
  ["an early receive is released (visibility 0)", { receiveCount: 1 }, "visibility"],
  ["the last allowed receive is re-queued", { receiveCount: 3 }, "requeue"],
  ["maxReceiveCount 1: the first receive is re-queued", {
    receiveCount: 1,
    maxReceiveCount: 1,
  }, "requeue"],
  ["a RedrivePolicy not read yet: re-queued", {
    receiveCount: 1,
    redrive: () => ({ known: false, maxReceiveCount: undefined }),
  }, "requeue"],
  ["a queue without a RedrivePolicy: released", {
    receiveCount: 5,
    maxReceiveCount: undefined,
  }, "visibility"],
];
for (const [name, overrides, kind] of shutdownRows) {
  Deno.test(`pipeline: shutdown never hands a message on its last receive to the redrive policy: ${name}`, async () => {
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

Deno.test("pipeline: a long poll that returns after the stop began is handed back, not dropped or worked on", async () => {
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

/** Submits that fail `failures` times, then are accepted. */
function flaky(failures: number) {
  let calls = 0;
  return {
    submit: () =>
      ++calls <= failures ? down() : Promise.resolve({ accepted: true as const, status: 200 }),
    calls: () => calls,
  };
}

Deno.test("pipeline: redrive policy not read yet: a failing first receive is held, never released", async () => {
  const v = flaky(60); // far past one receive's retry budget
  const h = harness({
    submit: v.submit,
    receiveCount: 1,
    redrive: () => ({ known: false, maxReceiveCount: undefined }),
  });
  await h.run();
  assert.deepEqual(h.settled.map((s) => s.kind), ["delete"], "held until accepted");
  assert.ok(v.calls() > 60);
});

Deno.test("pipeline: redrive policy read later: a held message on an early receive is released", async () => {
  let known = false;
  let calls = 0;
  const h = harness({
    submit: () => {
      if (++calls === 3) known = true; // the background read succeeds meanwhile
      return down();
    },
    receiveCount: 1,
    redrive: () => ({ known, maxReceiveCount: 5 }),
  });
  await h.run();
  assert.deepEqual(h.settled.map((s) => s.kind), ["visibility"]);
  assert.equal(h.settled[0]?.args[1], 10, "an ordinary first release");
});

/** A queue that hands out `count` valid messages with distinct ids, then `again` of them again. */
function manyMessages(count: number, again: number[]) {
  let next = 0;
  const ids = [...Array.from({ length: count }, (_, i) => i), ...again];
  const intake = new AbortController();
  return {
    intake,
    receiveMessage: ({ maxNumberOfMessages }: { maxNumberOfMessages: number }) => {
      if (next >= ids.length) {
        intake.abort();
        return Promise.resolve([]);
      }
      const batch = ids.slice(next, next + maxNumberOfMessages).map((id, i): SqsMessage => ({
        messageId: `sqs-${next + i}`,
        receiptHandle: `h-${next + i}`,
        body: `{"message_id":"m-${id}","user_id":"7","event_ts":1,"payload":{}}`,
        attributes: { ApproximateReceiveCount: "1", SentTimestamp: "0" },
        messageAttributes: {},
      }));
      next += batch.length;
      return Promise.resolve(batch);
    },
  };
}

async function runMany(count: number, again: number[], dedupMaxBytes?: number) {
  const q = manyMessages(count, again);
  const lines: Array<Record<string, unknown>> = [];
  const metrics = createSluiceMetrics();
  let submits = 0;
  const fake = new FakeClock({ start: 1_000_000 });
  // 1 ms per read of the clock: thousands of messages a "second".
  const clock = { ...fake, monotonic: () => fake.advance(1), sleep: () => Promise.resolve() };
  const pipeline = testPipeline({
    intake: { receiveWaitSeconds: 1, maxInFlight: 100 },
    ...(dedupMaxBytes ? { dedupe: { dedupMaxBytes } } : {}),
    ports: {
      sqs: { receiveMessage: q.receiveMessage },
      submit: () => (submits++, Promise.resolve({ accepted: true, status: 200 })),
    },
    services: {
      clock,
      metrics,
      logger: createLogger({
        level: "info",
        write: (l) => lines.push(JSON.parse(l)),
        clock: fake,
      }),
    },
  });
  await pipeline.run(q.intake.signal, new AbortController().signal);
  await pipeline.drain();
  return { submits, metrics, lines };
}

Deno.test("pipeline: the dedupe window holds DEDUP_TTL_SECONDS past 250,000 accepted ids", async () => {
  // The old cache kept 250,000 ids whatever DEDUP_TTL_SECONDS said: the first ids were forgotten.
  const count = 260_000;
  const r = await runMany(count, [0, 1, 2, 9_999, 129_999]);
  assert.equal(r.submits, count, "the five redeliveries were recognised as duplicates");
  assert.equal(r.metrics.messages.get({ outcome: "duplicate" }), 5);
  assert.equal(r.metrics.dedupeWindow.get(), 3600);
});

Deno.test("pipeline: a window the memory budget cannot hold is said at startup and in sluice_dedupe_window_seconds", async () => {
  // 64 KiB holds 3,072 ids: at 3,000 msg/s about one second, far below an hour.
  const r = await runMany(10_000, [0, 9_999], 64 * 1024);
  const startup = r.lines.find((l) => /holds DEDUP_TTL_SECONDS=3600 up to/.test(String(l.msg)));
  assert.ok(startup, `a startup line: ${JSON.stringify(r.lines.slice(0, 3))}`);
  assert.equal(startup.max_entries, 3072);
  assert.equal(startup.window_seconds_at_rate, 1);
  const window = r.metrics.dedupeWindow.get()!;
  assert.ok(window > 0 && window < 3600, `effective window ${window} s`);
  assert.ok(r.lines.some((l) => /window is shorter than DEDUP_TTL_SECONDS/.test(String(l.msg))));
  // The newest id is still remembered; the oldest was dropped to stay in budget.
  assert.equal(r.metrics.messages.get({ outcome: "duplicate" }), 1);
  assert.equal(r.submits, 10_001);
});

Deno.test("pipeline: dedupeCapacity: the rate a budget holds and the window at full speed", () => {
  assert.deepEqual(dedupeCapacity(3600, 1_572_864, 3000), {
    rate: 3000,
    maxRate: 436,
    windowSeconds: 524,
  });
  assert.deepEqual(dedupeCapacity(60, 1_572_864, 3000), {
    rate: 3000,
    maxRate: 26214,
    windowSeconds: 60,
  });
});

Deno.test("pipeline: inFlight counts the messages being worked on, and drain() waits for the last", async () => {
  const q = manyMessages(25, []);
  const gate = Promise.withResolvers<void>();
  let submits = 0;
  let deletes = 0;
  const settler = fakeSettler((kind) => kind === "delete" && deletes++);
  const pipeline = testPipeline({
    intake: { receiveWaitSeconds: 1, maxInFlight: 100 },
    ports: {
      sqs: { receiveMessage: q.receiveMessage },
      settler,
      submit: async () => {
        submits++;
        await gate.promise;
        return { accepted: true, status: 200 };
      },
    },
  });
  await pipeline.run(q.intake.signal, new AbortController().signal);
  assert.equal(pipeline.inFlight, 25);
  let drained = false;
  const draining = pipeline.drain().then(() => drained = true);
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(drained, false, "drain waits while messages are in flight");
  assert.equal(submits, 25);
  gate.resolve();
  await draining;
  assert.equal(pipeline.inFlight, 0);
  assert.equal(deletes, 25);
  await pipeline.drain(); // nothing in flight: at once
});
