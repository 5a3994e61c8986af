/**
 * RATE_LIMIT through a running pipeline (docs/rate-limits.md): the excess of a key waits or is
 * deferred to its slot, never dead-lettered or released toward the redrive policy, and one
 * flooding key leaves the in-flight slots to the others.
 */
import assert from "node:assert/strict";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";
import type { Submission } from "../../src/adapters/validator_client.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import type { RateSettings } from "../../src/flow/rate_limiter.ts";
import { deliverOnce, fakeSettler, testPipeline } from "../support/pipeline_rig.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { startDynalite } from "../../lab/dynalite.ts";
import { DynamoDbRateStore, FleetRate, type RateStore } from "../../src/flow/rate_table.ts";
import { HttpError } from "../../src/lib/errors.ts";
import { CircuitBreaker } from "../../src/lib/circuit_breaker.ts";

const START = 1_000_000;

function message(i: number, user: string, receiveCount: number): SqsMessage {
  return {
    messageId: `sqs-${i}`,
    receiptHandle: `h-${i}`,
    body: JSON.stringify({ message_id: `m-${i}`, user_id: user, event_ts: 1, payload: {} }),
    attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: "0" },
    messageAttributes: {},
  };
}

/** Runs the pipeline over `messages` with `rate`, moving the fake clock 100 ms at a time. */
async function run(messages: SqsMessage[], rate: RateSettings) {
  const clock = new FakeClock({ start: START, auto: false });
  const metrics = createSluiceMetrics();
  const settled: Array<{ kind: string; handle: string; args: unknown[] }> = [];
  const submitted: Array<{ user: string; at: number }> = [];
  const queue = deliverOnce(() => messages);
  const pipeline = testPipeline({
    rate,
    ports: {
      sqs: queue.sqs,
      settler: fakeSettler((kind, args) => {
        const first = args[0];
        const handle = typeof first === "string" ? first : (first as SqsMessage).receiptHandle;
        settled.push({ kind, handle, args });
      }),
      submit: (document) => {
        submitted.push({ user: JSON.parse(document).user_id, at: clock.now() - START });
        return Promise.resolve({ accepted: true, status: 200 });
      },
    },
    services: { clock, metrics },
  });
  let done = false;
  const finished = pipeline.run(queue.intake.signal, new AbortController().signal)
    .then(() => pipeline.drain())
    .then(() => done = true);
  for (let steps = 0; !done && steps < 2000; steps++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    clock.advance(100);
  }
  await finished;
  const count = (outcome: string) =>
    Number(
      metrics.registry.render().split("\n")
        .find((l) => l.startsWith(`sluice_messages_total{outcome="${outcome}"}`))?.split(" ")[1],
    );
  return { settled, submitted, count };
}

const kinds = (settled: Array<{ kind: string }>) => settled.map((s) => s.kind).sort();

Deno.test("pipeline rate limit: a long wait is deferred with a visibility delay to the key's slot, never dead-lettered", async () => {
  const messages = [0, 1, 2, 3].map((i) => message(i, "hot", 1));
  const r = await run(messages, { limit: 1, windowMs: 10_000, key: { kind: "user_id" } });
  assert.deepEqual(kinds(r.settled), ["delete", "visibility", "visibility", "visibility"]);
  // Each deferred one comes back at its own slot: 10 s, 20 s, 30 s (the key's next slots).
  const delays = r.settled.filter((s) => s.kind === "visibility").map((s) => s.args[1]);
  assert.deepEqual(delays, [10, 20, 30]);
  assert.equal(r.count("deferred"), 3);
  assert.equal(r.count("released"), 0, "a deferral is not a failure");
  assert.equal(r.count("dead_lettered"), 0);
  assert.equal(r.submitted.length, 1);
});

Deno.test("pipeline rate limit: on the last allowed receive the excess is held, never released, then submitted at its slot", async () => {
  const messages = [0, 1, 2].map((i) => message(i, "hot", 3));
  const r = await run(messages, { limit: 1, windowMs: 10_000, key: { kind: "user_id" } });
  assert.deepEqual(kinds(r.settled), ["delete", "delete", "delete"]);
  assert.equal(r.count("deferred"), 0);
  assert.equal(r.count("accepted"), 3);
  const times = r.submitted.map((s) => s.at);
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i]! - times[i - 1]! >= 10_000, `submissions at ${times.join(", ")} ms`);
  }
});

Deno.test("pipeline rate limit: a flooding key holds at most its share of MAX_IN_FLIGHT; another key is served at once", async () => {
  // MAX_IN_FLIGHT 10 (the rig's): the hot key may hold 1 here; its other excess is deferred.
  const messages = [
    ...[0, 1, 2, 3, 4, 5, 6, 7, 8].map((i) => message(i, "hot", 1)),
    message(9, "quiet", 1),
  ];
  const r = await run(messages, { limit: 1, windowMs: 1000, key: { kind: "user_id" } });
  assert.deepEqual(r.submitted.filter((s) => s.user === "quiet"), [{ user: "quiet", at: 0 }]);
  assert.deepEqual(r.submitted.filter((s) => s.user === "hot").map((s) => s.at), [0, 1000]);
  assert.equal(r.count("deferred"), 7);
  assert.equal(r.count("accepted"), 3);
  assert.equal(r.count("dead_lettered"), 0);
});

Deno.test("pipeline rate limit: RATE_LIMIT_KEY attribute:NAME limits by that attribute; a message without it is not limited", async () => {
  const tagged = (i: number, tenant?: string) => {
    const m = message(i, `u${i}`, 1);
    if (tenant) m.messageAttributes.tenant = { DataType: "String", StringValue: tenant };
    return m;
  };
  const messages = [tagged(0, "t1"), tagged(1, "t1"), tagged(2), tagged(3)];
  const rate = { limit: 1, windowMs: 10_000, key: { kind: "attribute", name: "tenant" } } as const;
  const r = await run(messages, rate);
  assert.equal(r.count("accepted"), 3);
  assert.equal(r.count("deferred"), 1);
});

/** One worker of a fleet sharing `store`: its pipeline's run over `messages`, to the drain. */
function fleetWorker(o: {
  messages: SqsMessage[];
  rate: RateSettings;
  store: RateStore;
  clock: FakeClock;
  submit: () => Promise<Submission>;
  settled: string[];
}): Promise<void> {
  const queue = deliverOnce(() => o.messages);
  const breaker = new CircuitBreaker({ name: "rate_table", minimumCalls: 5, clock: o.clock });
  const pipeline = testPipeline({
    rate: o.rate,
    ports: {
      sqs: queue.sqs,
      settler: fakeSettler((kind) => o.settled.push(kind)),
      submit: o.submit,
      rateFleet: new FleetRate(o.rate, o.store, { clock: o.clock, breaker }),
    },
    services: { clock: o.clock },
  });
  return pipeline.run(queue.intake.signal, new AbortController().signal)
    .then(() => pipeline.drain());
}

/** Moves the fake clock `stepMs` per turn of the event loop until `work` ends. */
async function tick(clock: FakeClock, stepMs: number, work: Promise<unknown>): Promise<void> {
  let done = false;
  const ended = work.then(() => done = true);
  for (let steps = 0; !done && steps < 2000; steps++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    clock.advance(stepMs);
  }
  await ended;
}

Deno.test("pipeline rate limit: with RATE_LIMIT_TABLE two workers share one window: N for the fleet, the rest deferred", async () => {
  const db = await startDynalite();
  try {
    const clock = new FakeClock({ start: 1_700_000_000_000, auto: false });
    const rate: RateSettings = { limit: 3, windowMs: 10_000, key: { kind: "user_id" } };
    const store = new DynamoDbRateStore(db.client, db.table);
    const submitted: number[] = [];
    const settled: string[] = [];
    const submit = (): Promise<Submission> => {
      submitted.push(clock.now());
      return Promise.resolve({ accepted: true, status: 200 });
    };
    const worker = (first: number) =>
      fleetWorker({
        messages: [0, 1, 2, 3, 4, 5].map((i) => message(first + i, "hot", 1)),
        rate,
        store,
        clock,
        submit,
        settled,
      });
    await tick(clock, 10, Promise.all([worker(0), worker(100)]));
    // Without the table each worker would have let 3 through: 6 in one window.
    assert.equal(submitted.length, 3);
    assert.deepEqual(settled.sort(), [...Array(3).fill("delete"), ...Array(9).fill("visibility")]);
  } finally {
    await db.close();
  }
});

Deno.test("pipeline rate limit: with RATE_LIMIT_TABLE each try of a submission takes its own fleet slot", async () => {
  const clock = new FakeClock({ start: 1_700_000_000_000, auto: false });
  const rate: RateSettings = { limit: 5, windowMs: 1000, key: { kind: "user_id" } };
  let takes = 0;
  const store: RateStore = {
    take: (_key, plan) => (takes++, Promise.resolve(new Map([[plan.slice, takes]]))),
    read: () => Promise.resolve(new Map()),
  };
  const tries: number[] = [];
  const settled: string[] = [];
  const submit = (): Promise<Submission> => {
    tries.push(takes);
    return tries.length === 1
      ? Promise.reject(new HttpError("validator", 503, "down"))
      : Promise.resolve({ accepted: true, status: 200 });
  };
  await tick(
    clock,
    50,
    fleetWorker({ messages: [message(1, "u", 1)], rate, store, clock, submit, settled }),
  );
  // The first try went out on the admission's slot, the retry on a second one.
  assert.deepEqual(tries, [1, 2]);
  assert.deepEqual(settled, ["delete"]);
});
