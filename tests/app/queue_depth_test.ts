import assert from "node:assert/strict";
import { QueueDepthPoller, warnAgain } from "../../src/app/queue_depth.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import { SqsError } from "../../src/lib/errors.ts";
import { FakeClock } from "../support/fake_clock.ts";

// [name, last warned at, now, warn again]
const rows: Array<[string, number | undefined, number, boolean]> = [
  ["never warned: warn", undefined, 0, true],
  ["warned a minute ago: debug only", 0, 60_000, false],
  ["just under 10 minutes: debug only", 0, 599_999, false],
  ["10 minutes later: warn again", 0, 600_000, true],
];
for (const [name, last, now, again] of rows) {
  Deno.test(`queue depth: ${name}`, () => assert.equal(warnAgain(last, now, 600_000), again));
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("queue depth: both queues into the gauge every 30 s; a failing DLQ warns once per 10 minutes per error", async () => {
  const clock = new FakeClock({ auto: false });
  const metrics = createSluiceMetrics();
  const lines: string[] = [];
  let dlqCode = "AccessDenied";
  const found: { dlq?: string } = {};
  const polled: string[] = [];
  const poller = new QueueDepthPoller({
    settings: { queueUrl: "http://q/main" },
    ports: {
      sqs: {
        getQueueAttributes: (url) => {
          polled.push(url);
          if (url === "http://q/dlq") {
            return Promise.reject(new SqsError("GetQueueAttributes", dlqCode, 400, "no"));
          }
          return Promise.resolve({
            ApproximateNumberOfMessages: "7",
            ApproximateNumberOfMessagesNotVisible: "2",
          });
        },
      },
      dlqUrl: () => found.dlq,
    },
    services: {
      clock,
      metrics,
      logger: {
        warn: (message, fields) => lines.push(`warn ${fields?.queue} ${message.slice(0, 23)}`),
        debug: (message, fields) => lines.push(`debug ${fields?.queue} ${message.slice(0, 23)}`),
      },
    },
  });
  const stop = new AbortController();
  const running = poller.run(stop.signal);
  await settle();
  assert.equal(metrics.queueMessages.get({ queue: "main", state: "visible" }), 7);
  assert.equal(metrics.queueMessages.get({ queue: "main", state: "in_flight" }), 2);
  found.dlq = "http://q/dlq"; // found later: polled from the next round
  for (let round = 1; round <= 23; round++) {
    if (round === 22) dlqCode = "AWS.SimpleQueueService.NonExistentQueue";
    clock.advance(30_000);
    await settle();
  }
  stop.abort();
  await running;
  assert.equal(polled.length, 24 + 23, "main every round, the DLQ from the second");
  // Warned in rounds 1 (t = 30 s), 21 (600 s later) and 22 (another error code); else debug.
  const warnedIn = lines.flatMap((l, i) => l.startsWith("warn dlq") ? [i + 1] : []);
  assert.deepEqual(warnedIn, [1, 21, 22]);
  assert.equal(lines.length, 23);
  assert.ok(lines.every((l) => l.endsWith("dlq queue depth poll failed")), lines.join("\n"));
  assert.deepEqual(clock.sleeps.slice(0, 2), [30_000, 30_000]);
});
