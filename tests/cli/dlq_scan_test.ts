import assert from "node:assert/strict";
import { FakeClock } from "../support/fake_clock.ts";
import type { SqsClient, SqsMessage } from "../../src/adapters/sqs_client.ts";
import type { CliDeps } from "../../src/cli/cli_deps.ts";
import { scanDlq } from "../../src/cli/dlq_scan.ts";
import type { DlqSession } from "../../src/cli/dlq_session.ts";

/** An in-memory DLQ: received messages are hidden until released; records visibility changes. */
function fakeDlq(categories: string[]) {
  const messages: SqsMessage[] = categories.map((c, i) => ({
    messageId: `id-${i}`,
    receiptHandle: `rh-${i}`,
    body: `b${i}`,
    attributes: { SentTimestamp: "0" },
    messageAttributes: { sluice_error: { DataType: "String", StringValue: c } },
  }));
  const hidden = new Set<string>();
  const released: string[] = [];
  const sqs = {
    receiveMessage: (p: { maxNumberOfMessages: number }) => {
      const batch = messages.filter((m) => !hidden.has(m.receiptHandle)).slice(
        0,
        p.maxNumberOfMessages,
      );
      for (const m of batch) hidden.add(m.receiptHandle);
      return Promise.resolve(batch);
    },
    changeMessageVisibilityBatch: (
      _url: string,
      entries: Array<{ receiptHandle: string; visibilityTimeout: number }>,
    ) => {
      for (const e of entries) {
        assert.equal(e.visibilityTimeout, 0);
        hidden.delete(e.receiptHandle);
        released.push(e.receiptHandle);
      }
      return Promise.resolve({ successful: entries.map((_, i) => String(i)), failed: [] });
    },
  };
  const session = { sqs: sqs as unknown as SqsClient, dlqUrl: "dlq" } as DlqSession;
  return { session, released, hidden };
}

const deps = {
  clock: new FakeClock({ start: 1000 }),
  err: () => {},
  signal: new AbortController().signal,
} as unknown as CliDeps;

const filter = (categories: string[]) => ({
  categories,
  reasonMatch: undefined,
  minAgeSeconds: undefined,
});

Deno.test("scanDlq: sees each message once, hands over the selected in batches, releases the rest at the end", async () => {
  const categories = Array.from(
    { length: 25 },
    (_, i) => (i % 5 === 0 ? "VALIDATION" : "REJECTED"),
  );
  const { session, released, hidden } = fakeDlq(categories);
  const batches: string[][] = [];
  const result = await scanDlq({
    session,
    deps,
    filter: filter(["VALIDATION"]),
    limit: undefined,
    batchSize: 2,
    onBatch: (batch) => {
      batches.push(batch.map((m) => m.messageId));
      // While the walk goes on, nothing it saw is visible again.
      assert.equal(released.length, 0);
      return Promise.resolve({ release: [], stop: false });
    },
  });
  assert.deepEqual(result, { scanned: 25, selected: 5, skipped: 0, released: 20 });
  assert.deepEqual(batches, [["id-0", "id-5"], ["id-10", "id-15"], ["id-20"]]);
  assert.equal(hidden.size, 5, "only the handed-over ones stay hidden");
});

Deno.test("scanDlq: --max stops selecting; a failing batch handler still releases everything held", async () => {
  const { session, released, hidden } = fakeDlq(Array(12).fill("VALIDATION"));
  const limited = await scanDlq({
    session,
    deps,
    filter: filter([]),
    limit: 3,
    batchSize: 10,
    onBatch: (batch) => Promise.resolve({ release: batch, stop: false }),
  });
  assert.equal(limited.selected, 3);
  assert.equal(hidden.size, 0);
  released.length = 0;
  await assert.rejects(
    scanDlq({
      session,
      deps,
      filter: filter([]),
      limit: undefined,
      batchSize: 4,
      onBatch: () => Promise.reject(new Error("interrupted")),
    }),
    /interrupted/,
  );
  assert.equal(hidden.size, 0, "the interrupted batch and the rest are visible again");
});

Deno.test("scanDlq: one pass looks at no more than maxScanned; skipped messages are held, not counted", async () => {
  const { session, hidden } = fakeDlq(Array(30).fill("VALIDATION"));
  const handed: string[] = [];
  const result = await scanDlq({
    session,
    deps,
    filter: filter([]),
    limit: undefined,
    maxScanned: 12,
    // Every third message is one a redrive moved already (it came back).
    skip: (m) => Number(m.messageId.slice(3)) % 3 === 0,
    batchSize: 10,
    onBatch: (batch) => {
      handed.push(...batch.map((m) => m.messageId));
      return Promise.resolve({ release: [], stop: false });
    },
  });
  assert.equal(handed.length, 12, "12 looked at, all selected");
  assert.ok(handed.every((id) => Number(id.slice(3)) % 3 !== 0), "none of the skipped handed over");
  assert.equal(result.selected, 12);
  assert.ok(result.skipped >= 5, `${result.skipped}`);
  assert.equal(hidden.size, 12, "the skipped and the unseen are visible again");
});
