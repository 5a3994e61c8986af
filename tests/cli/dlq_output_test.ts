/**
 * What the dlq commands print of a message: bodies, attributes, reasons, ids and SQS's own
 * answers may hold any character, and none that drives a terminal reaches it raw (C0 with ESC,
 * DEL, C1 with CSI, bidirectional controls, separators). JSON output decodes to the original.
 * SQS (the lab's proxy) answers a receive with such messages, as a hostile or broken endpoint
 * could.
 */
import assert from "node:assert/strict";
import type { LocalSqs } from "../support/local_sqs.ts";
import { sluiceInProcess, withQueues } from "../support/cli_in_process.ts";
import { sluice } from "../support/sluice_cli.ts";

const HOSTILE = "nl\n cr\r tab\t esc\u001b[2J nul\u0000 bel\u0007 del\u007f csi\u009b31m " +
  "rlo\u202e lri\u2066 pdi\u2069 lrm\u200e alm\u061c ls\u2028 lone\ud800 end";
const RAW_UNSAFE =
  // deno-lint-ignore no-control-regex -- the test looks for raw control characters
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const str = (v: string) => ({ DataType: "String", StringValue: v });

/** A receive answer with one message whose every printed part is hostile (its source too). */
function hostileReceive(withSource = true) {
  return {
    body: {
      Messages: [{
        MessageId: `id-${HOSTILE}`,
        ReceiptHandle: "rh-hostile",
        Body: `{"message_id":"${HOSTILE}"} ${HOSTILE}`,
        Attributes: {
          SentTimestamp: String(Date.now()),
          ApproximateReceiveCount: "1",
          ...(withSource ? { DeadLetterQueueSourceArn: `arn:${HOSTILE}` } : {}),
        },
        MessageAttributes: {
          sluice_error: str(`VALIDATION${HOSTILE}`),
          sluice_reason: str(HOSTILE),
        },
      }],
    },
  };
}

/** SQS with "work" dead-lettering to "dlq", which holds one message (the depth a redrive finds
 * at the start, its bound); the receives are scripted to answer the hostile one. */
function withHostileDlq(fn: (sqs: LocalSqs, env: Record<string, string>) => Promise<void>) {
  const policy = JSON.stringify({
    deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
    maxReceiveCount: 3,
  });
  return withQueues({ dlq: {}, work: { RedrivePolicy: policy } }, async (sqs, env) => {
    await sqs.send("dlq", "filler");
    await fn(sqs, env);
  });
}

/** No line holds a raw unsafe character (a line break inside one included). */
function assertInert(what: string, lines: string[]) {
  for (const line of lines) {
    const found = line.match(RAW_UNSAFE);
    assert.equal(
      found,
      null,
      `${what}: raw U+${found?.[0]?.charCodeAt(0).toString(16)} in ${JSON.stringify(line)}`,
    );
  }
}

Deno.test("dlq output: peek in text, from the real entry, prints no raw control character", async () => {
  await withHostileDlq(async (sqs, env) => {
    sqs.respond("ReceiveMessage", hostileReceive());
    const r = await sluice(["dlq", "peek", "1"], env);
    assert.equal(r.code, 0, r.stderr);
    assertInert("stdout and stderr", (r.stdout + r.stderr).split("\n"));
    assert.equal(
      r.stdout.trimEnd().split("\n").length,
      2,
      "a line for the message, one for its body",
    );
    assert.match(
      r.stdout,
      /esc\\u001b\[2J nul\\u0000 bel\\u0007 del\\u007f csi\\u009b31m rlo\\u202e/,
    );
  });
});

Deno.test("dlq output: peek and a dry-run redrive in JSON escape C1 and bidi characters and decode to the originals", async () => {
  await withHostileDlq(async (sqs, env) => {
    for (
      const args of [["dlq", "peek", "--output", "json"], [
        "dlq",
        "redrive",
        "--dry-run",
        "--output",
        "json",
      ]]
    ) {
      sqs.respond("ReceiveMessage", hostileReceive(false));
      const r = await sluiceInProcess(args, env);
      assertInert(args.join(" "), r.lines);
      const doc = JSON.parse(r.stdout);
      const row = (doc.messages ?? doc.would_move)[0];
      assert.equal(row.reason, HOSTILE, args.join(" "));
      assert.equal(row.category, `VALIDATION${HOSTILE}`);
      assert.equal(row.sqs_message_id, `id-${HOSTILE}`);
      if (doc.messages) assert.ok(row.body.endsWith(HOSTILE));
    }
  });
});

Deno.test("dlq output: a redrive's text lines (preview, refusals, SQS's codes) print no raw control character", async () => {
  await withHostileDlq(async (sqs, env) => {
    sqs.respond("ReceiveMessage", hostileReceive());
    const dry = await sluiceInProcess(["dlq", "redrive", "--dry-run"], env);
    assertInert("dry run", dry.lines);
    assert.match(dry.stdout, /would stay .* unreadable DeadLetterQueueSourceArn "arn:nl\\n cr\\r/);
    // A message without a source, and SQS refusing its entry with a hostile code.
    const message = hostileReceive();
    delete (message.body.Messages[0]!.Attributes as Record<string, string>)
      .DeadLetterQueueSourceArn;
    sqs.respond("ReceiveMessage", message);
    sqs.respond("SendMessageBatch", {
      body: {
        Successful: [],
        Failed: [{ Id: "0", Code: `Bad${HOSTILE}`, Message: HOSTILE, SenderFault: true }],
      },
    });
    const moved = await sluiceInProcess(["dlq", "redrive"], env);
    assert.equal(moved.code, 1, moved.stdout + moved.stderr);
    assertInert("redrive", [...moved.lines, ...moved.status]);
    assert.match(moved.stderr, /not moved \(still in the DLQ\): id-nl\\n .* Badnl\\n cr\\r/);
  });
});
