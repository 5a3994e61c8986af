/**
 * Intake as an async iterable: slots are taken before a receive, so a consumer that
 * does not give slots back stops the polls; what a poll brings after the stop is late.
 */
import { systemClock } from "../../src/lib/clock.ts";
import { QUIET_LOGGER } from "../support/quiet_logger.ts";
import assert from "node:assert/strict";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";
import { Intake, type Received } from "../../src/flow/intake.ts";

function batchOf(n: number, from: number): SqsMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    messageId: `sqs-${from + i}`,
    receiptHandle: `h-${from + i}`,
    body: "{}",
    attributes: {},
    messageAttributes: {},
  }));
}

/** Pauses of at most 5 ms of real time, ended (not rejected) by an abort. */
const SHORT_PAUSES = {
  ...systemClock,
  random: () => 0.5,
  sleep: (ms: number, signal?: AbortSignal) =>
    systemClock.sleep(Math.min(ms, 5), signal).catch(() => {}),
};

/** One poller, batches of 10, 1 s long polls; tests change what they look at. */
const SETTINGS = {
  queueUrl: "http://sqs.local/000/q",
  maxBatch: 10,
  receiveWaitSeconds: 1,
  visibilityTimeoutSeconds: 30,
  maxInFlight: 10,
  pollers: 1,
};

function intake(receive: (call: number) => Promise<SqsMessage[]>) {
  let calls = 0;
  const it = new Intake(
    SETTINGS,
    { sqs: { receiveMessage: () => receive(++calls) } },
    {
      logger: QUIET_LOGGER,
      clock: SHORT_PAUSES,
    },
  );
  return { it, calls: () => calls };
}

Deno.test("intake: no receive while every slot is held; one more once the slots come back", async () => {
  const stop = new AbortController();
  const { it, calls } = intake((call) => Promise.resolve(batchOf(10, call * 10)));
  const taken: Received[] = [];
  const stream = it.receive({ stop: stop.signal, pollSignal: () => stop.signal });
  for await (const received of stream) {
    taken.push(received);
    if (taken.length === 10) {
      // MAX_IN_FLIGHT reached: the poller waits for a slot, it does not poll.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(calls(), 1);
      taken.forEach((r) => r.done());
    }
    if (taken.length === 11) {
      assert.equal(calls(), 2);
      stop.abort();
      break;
    }
  }
  taken.forEach((r) => r.done());
  assert.equal(it.alive, false, "the poller stopped with the iteration");
});

Deno.test("intake: a poll answered after the stop began yields its messages as late", async () => {
  const stop = new AbortController();
  const { it } = intake((call) => {
    if (call > 1) return Promise.resolve([]);
    stop.abort(); // SIGTERM lands while this poll is open
    return Promise.resolve(batchOf(3, 0));
  });
  const got: Received[] = [];
  for await (
    const received of it.receive({
      stop: stop.signal,
      pollSignal: () => new AbortController().signal,
    })
  ) {
    got.push(received);
    received.done();
  }
  assert.deepEqual(got.map((r) => [r.message.messageId, r.late]), [
    ["sqs-0", true],
    ["sqs-1", true],
    ["sqs-2", true],
  ]);
});

Deno.test("intake: receiveBatches yields a receive's messages together, in order", async () => {
  const stop = new AbortController();
  const { it } = intake((call) => {
    if (call === 1) return Promise.resolve(batchOf(4, 0));
    if (call === 2) return Promise.resolve(batchOf(2, 4));
    stop.abort();
    return Promise.resolve([]);
  });
  const batches: string[][] = [];
  for await (
    const batch of it.receiveBatches({ stop: stop.signal, pollSignal: () => stop.signal })
  ) {
    batches.push(batch.map((r) => r.message.messageId));
    batch.forEach((r) => r.done());
  }
  assert.deepEqual(batches, [["sqs-0", "sqs-1", "sqs-2", "sqs-3"], ["sqs-4", "sqs-5"]]);
});

Deno.test("intake: on a FIFO queue a receive retried after a lost answer carries the same ReceiveRequestAttemptId; the next one a new id", async () => {
  const stop = new AbortController();
  const asked: Array<{ id: string | undefined; attributes: readonly string[] | undefined }> = [];
  let calls = 0;
  let random = 0.25;
  const it = new Intake(
    { ...SETTINGS, queueUrl: "http://sqs.local/000/q.fifo", fifo: true },
    {
      sqs: {
        receiveMessage: (p) => {
          asked.push({ id: p.receiveRequestAttemptId, attributes: p.moreSystemAttributes });
          calls++;
          if (calls === 1) return Promise.reject(new Error("connection reset"));
          if (calls === 3) stop.abort();
          return Promise.resolve([]);
        },
      },
    },
    {
      logger: QUIET_LOGGER,
      clock: {
        ...systemClock,
        random: () => (random += 0.1),
        sleep: (_ms: number, signal?: AbortSignal) => systemClock.sleep(1, signal).catch(() => {}),
      },
    },
  );
  for await (const _ of it.receiveBatches({ stop: stop.signal, pollSignal: () => stop.signal })) {
    // nothing arrives
  }
  assert.equal(asked.length, 3);
  assert.ok(asked[0]!.id, "an attempt id on a FIFO receive");
  assert.equal(asked[1]!.id, asked[0]!.id, "the retry replays the lost receive");
  assert.notEqual(asked[2]!.id, asked[1]!.id, "a receive that was answered is not replayed");
  assert.deepEqual(asked[0]!.attributes, ["MessageGroupId", "SequenceNumber"]);
});

Deno.test("intake: receives of one message keep one long poll on a standard queue, every poll on a FIFO queue (SQS may answer one group per receive)", async () => {
  for (const fifo of [false, true]) {
    const stop = new AbortController();
    let calls = 0;
    let open = 0;
    let most = 0;
    const it = new Intake(
      {
        ...SETTINGS,
        queueUrl: `http://sqs.local/000/q${fifo ? ".fifo" : ""}`,
        maxInFlight: 30,
        pollers: 3,
        fifo,
      },
      {
        sqs: {
          receiveMessage: async () => {
            const n = ++calls;
            if (n === 40) stop.abort();
            open++;
            most = Math.max(most, open);
            // An answer takes a few ms, as over a network.
            await new Promise((resolve) => setTimeout(resolve, 3));
            open--;
            return batchOf(1, n);
          },
        },
      },
      {
        logger: QUIET_LOGGER,
        clock: SHORT_PAUSES,
      },
    );
    for await (
      const batch of it.receiveBatches({
        stop: stop.signal,
        pollSignal: () => stop.signal,
      })
    ) {
      for (const received of batch) received.done();
    }
    assert.equal(most, fifo ? 3 : 1, `${fifo ? "FIFO" : "standard"}: long polls at once`);
  }
});
