/**
 * `sluice dlq redrive` against fauxqs with 1,000 mixed dead-lettered messages: a dry run changes
 * nothing and lists exactly the selected ones; a bounded, paced redrive moves exactly its count
 * with attributes kept and nothing lost (both queues counted before and after).
 */
import assert from "node:assert/strict";
import { receiveAll, startLabEnv } from "../support/lab_env.ts";
import { sluice } from "../support/sluice_cli.ts";

const CATEGORIES = ["VALIDATION", "REJECTED", "UNKNOWN_USER", "TRANSIENT"];

Deno.test("dlq redrive: 1,000 mixed DLQ messages, dry run then --max 100 --rate 50", async () => {
  const lab = await startLabEnv();
  try {
    const expectedValidation = new Set<string>();
    for (let i = 0; i < 1000; i += 10) {
      const entries = Array.from({ length: 10 }, (_, j) => {
        const n = i + j;
        const category = CATEGORIES[n % CATEGORIES.length]!;
        return {
          Id: String(j),
          MessageBody: JSON.stringify({
            message_id: `m-${n}`,
            user_id: "u",
            event_ts: 1,
            payload: {},
          }),
          MessageAttributes: {
            trace_id: { DataType: "String", StringValue: `t-${n}` },
            sluice_error: { DataType: "String", StringValue: category },
            sluice_reason: { DataType: "String", StringValue: `reason ${n}` },
          },
        };
      });
      const sent = await lab.admin.call<{ Successful?: Array<{ Id: string; MessageId: string }> }>(
        "SendMessageBatch",
        { QueueUrl: lab.dlqUrl, Entries: entries },
      );
      for (const s of sent.Successful ?? []) {
        if ((i + Number(s.Id)) % CATEGORIES.length === 0) expectedValidation.add(s.MessageId);
      }
    }
    assert.equal(expectedValidation.size, 250);
    const env = {
      SQS_QUEUE_URL: lab.queueUrl,
      AWS_ENDPOINT_URL_SQS: lab.endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
    };
    assert.deepEqual([await lab.depth(lab.queueUrl), await lab.depth(lab.dlqUrl)], [0, 1000]);

    const dry = await sluice(
      ["dlq", "redrive", "--category", "VALIDATION", "--dry-run", "--output", "json"],
      env,
    );
    assert.equal(dry.code, 0, dry.stderr);
    const preview = JSON.parse(dry.stdout);
    const listed = new Set<string>(
      preview.would_move.map((r: { sqs_message_id: string }) => r.sqs_message_id),
    );
    assert.equal(preview.would_move.length, 250);
    assert.deepEqual([...listed].sort(), [...expectedValidation].sort());
    assert.ok(preview.would_move.every((r: { category: string }) => r.category === "VALIDATION"));
    assert.deepEqual([await lab.depth(lab.queueUrl), await lab.depth(lab.dlqUrl)], [0, 1000]);
    const visibleAfterDry = await lab.admin.depth(lab.dlqUrl);
    assert.equal(visibleAfterDry.visible, 1000, "held messages were made visible again at once");

    const moved = await sluice(
      ["dlq", "redrive", "--category", "VALIDATION", "--max", "100", "--rate", "50"],
      env,
    );
    assert.equal(moved.code, 0, moved.stdout + moved.stderr);
    assert.match(moved.stdout, /moved 100 message\(s\)/);
    assert.deepEqual([await lab.depth(lab.queueUrl), await lab.depth(lab.dlqUrl)], [100, 900]);

    const main = await receiveAll(lab, lab.queueUrl);
    assert.equal(main.length, 100);
    for (const m of main) {
      const n = JSON.parse(m.body).message_id.slice(2);
      assert.equal(m.attributes.trace_id, `t-${n}`, "producer attribute kept");
      assert.equal(m.attributes.sluice_last_error, "VALIDATION");
      assert.equal(m.attributes.sluice_last_reason, `reason ${n}`);
      assert.ok(m.attributes.sluice_redriven_at, "redrive time recorded");
      assert.equal(m.attributes.sluice_error, undefined, "a fresh failure writes its own");
    }
    const dlq = await receiveAll(lab, lab.dlqUrl);
    assert.equal(dlq.length, 900);
    const left = dlq.filter((m) => m.attributes.sluice_error === "VALIDATION").length;
    assert.equal(left, 150, "the other VALIDATION messages stay");
    const all = new Set([...main, ...dlq].map((m) => JSON.parse(m.body).message_id));
    assert.equal(all.size, 1000, "none lost, none doubled");
  } finally {
    await lab.close();
  }
});
