/**
 * The dlq commands and DLQ_QUEUE_URL: a queue that is not shown to be the main queue's DLQ (its
 * RedrivePolicy target, or listed by ListDeadLetterSourceQueues) is refused by purge and
 * redrive, warned about by peek and stats, and used with --allow-any-dlq. Against fauxqs behind
 * the lab's SQS proxy.
 */
import assert from "node:assert/strict";
import type { LocalSqs } from "../support/local_sqs.ts";
import { sqsFaults } from "../../lab/sqs_answers.ts";
import { sluiceInProcess, withQueues as withLocalQueues } from "../support/cli_in_process.ts";

const policy = JSON.stringify({
  deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
  maxReceiveCount: 3,
});

/** "work" dead-letters to "dlq"; "stray" is some other queue; env for commands on "work". */
function withQueues(fn: (sqs: LocalSqs, env: Record<string, string>) => Promise<void>) {
  return withLocalQueues({ dlq: {}, stray: {}, work: { RedrivePolicy: policy } }, fn);
}

const accessDenied = () =>
  sqsFaults.accessDenied(
    "User: arn:aws:iam::000000000000:user/ops is not authorized to perform this action",
  );

Deno.test("dlq check: purge and redrive refuse a DLQ_QUEUE_URL that is not the queue's DLQ, in one line, touching nothing", async () => {
  await withQueues(async (sqs, env) => {
    await sqs.send("stray", "someone else's message");
    const stray = { ...env, DLQ_QUEUE_URL: sqs.queueUrl("stray") };
    for (const args of [["dlq", "purge", "--yes"], ["dlq", "redrive"]]) {
      const r = await sluiceInProcess(args, stray);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      const lines = r.stderr.split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        /^sluice: DLQ_QUEUE_URL \S+\/stray is not the dead-letter queue of SQS_QUEUE_URL \S+\/work: the queue's RedrivePolicy targets dlq, and ListDeadLetterSourceQueues on it does not list the queue; add --allow-any-dlq to use it anyway$/,
      );
    }
    assert.equal(sqs.requestsFor("PurgeQueue").length, 0);
    assert.equal(sqs.requestsFor("ReceiveMessage").length, 0);
    assert.equal((await sqs.messages("stray")).length, 1);
  });
});

Deno.test("dlq check: peek and stats warn about such a DLQ and go on; --allow-any-dlq lets purge run", async () => {
  await withQueues(async (sqs, env) => {
    await sqs.send("stray", "m", { sluice_error: "VALIDATION" });
    const stray = { ...env, DLQ_QUEUE_URL: sqs.queueUrl("stray") };
    for (const args of [["dlq", "peek"], ["dlq", "stats"]]) {
      const r = await sluiceInProcess(args, stray);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^sluice: warning: DLQ_QUEUE_URL .* is not the dead-letter queue/);
    }
    const purged = await sluiceInProcess(["dlq", "purge", "--yes", "--allow-any-dlq"], stray);
    assert.equal(purged.code, 0, purged.stderr);
    assert.match(
      purged.stderr,
      /warning: .* not the dead-letter queue .*going on \(--allow-any-dlq\)/,
    );
    assert.equal((await sqs.messages("stray")).length, 0);
  });
});

Deno.test("dlq check: DLQ_QUEUE_URL naming the RedrivePolicy's target needs no ListDeadLetterSourceQueues", async () => {
  await withQueues(async (sqs, env) => {
    await sqs.send("dlq", "m", { sluice_error: "VALIDATION" });
    const r = await sluiceInProcess(["dlq", "stats", "--output", "json"], {
      ...env,
      DLQ_QUEUE_URL: sqs.queueUrl("dlq"),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(
      JSON.parse(r.stdout).found_by,
      /^DLQ_QUEUE_URL, the target of the queue's RedrivePolicy$/,
    );
    assert.equal(sqs.requestsFor("ListDeadLetterSourceQueues").length, 0);
  });
});

Deno.test("dlq check: with the queue's attributes refused, ListDeadLetterSourceQueues listing it proves the DLQ", async () => {
  await withQueues(async (sqs, env) => {
    await sqs.send("dlq", "m", { sluice_error: "VALIDATION" });
    sqs.respond("GetQueueAttributes", accessDenied());
    const r = await sluiceInProcess(["dlq", "redrive"], {
      ...env,
      DLQ_QUEUE_URL: sqs.queueUrl("dlq"),
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /found by DLQ_QUEUE_URL, ListDeadLetterSourceQueues lists SQS_QUEUE_URL/,
    );
    assert.deepEqual((await sqs.messages("work")).map((m) => m.body), ["m"]);
  });
});

Deno.test("dlq check: a refused ListDeadLetterSourceQueues leaves the DLQ unproven: exit 2 naming the refusal", async () => {
  await withQueues(async (sqs, env) => {
    sqs.respond("GetQueueAttributes", accessDenied());
    sqs.respond("ListDeadLetterSourceQueues", accessDenied());
    const r = await sluiceInProcess(["dlq", "purge", "--yes"], {
      ...env,
      DLQ_QUEUE_URL: sqs.queueUrl("dlq"),
    });
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /could not be read, and SQS ListDeadLetterSourceQueues failed: AccessDenied: User: .* not authorized .*\(HTTP 403\); add --allow-any-dlq/,
    );
    assert.equal(sqs.requestsFor("PurgeQueue").length, 0);
  });
});
