/**
 * The Settler against SQS (fauxqs behind the lab's proxy): a DLQ send refused for a bad
 * attribute, and real SQS's stale-handle answers.
 */
import { systemClock } from "../../src/lib/clock.ts";
import assert from "node:assert/strict";
import { SqsClient } from "../../src/adapters/sqs_client.ts";
import { parseMessage } from "../../src/domain/message_schema.ts";
import { Settler } from "../../src/flow/settle.ts";
import { SqsError } from "../../src/lib/errors.ts";
import { VisibilityHeartbeat } from "../../src/flow/visibility_heartbeat.ts";
import { type LocalSqs, startLocalSqs } from "../support/local_sqs.ts";
import { sqsError, sqsFaults } from "../../lab/sqs_answers.ts";
import { FakeClock } from "../support/fake_clock.ts";

async function setup(
  fn: (ctx: {
    sqs: LocalSqs;
    settler: Settler;
    stale: string[];
    fallbacks: string[];
    receive: () => Promise<string>;
  }) => Promise<void>,
) {
  const sqs = await startLocalSqs({ queues: { dlq: {}, work: { VisibilityTimeout: "30" } } });
  const client = new SqsClient({
    clock: systemClock,
    region: "us-east-1",
    credentials: () => Promise.resolve({ accessKeyId: "a", secretAccessKey: "b" }),
  });
  const stale: string[] = [];
  const fallbacks: string[] = [];
  const settler = new Settler({
    sqs: client,
    queueUrl: sqs.queueUrl("work"),
    dlqUrl: () => sqs.queueUrl("dlq"),
    // Real time: the deletes' batch timer and SQS's answers both run on it.
    clock: systemClock,
    batchWaitMs: 1,
    retryBudgetMs: 2000,
    onStale: (kind, code) => stale.push(`${kind} ${code}`),
    onDlqFallback: (error) => fallbacks.push(error.code),
  });
  const receive = async () => {
    const [m] = await client.receiveMessage({
      queueUrl: sqs.queueUrl("work"),
      maxNumberOfMessages: 1,
      waitTimeSeconds: 0,
    });
    assert.ok(m, "a message to settle");
    return m.receiptHandle;
  };
  try {
    await fn({ sqs, settler, stale, fallbacks, receive });
  } finally {
    await sqs.close();
  }
}

/** A received message with this handle and body, without message attributes. */
function copyOf(receiptHandle: string, body: string, messageAttributes = {}) {
  return { receiptHandle, body, messageAttributes };
}

/** Every character one SQS stores, and no lone surrogate. */
function wellFormed(text: string): boolean {
  return [...text].every((c) => {
    const cp = c.codePointAt(0)!;
    return cp === 9 || cp === 10 || cp === 13 || (cp >= 0x20 && cp <= 0xd7ff) ||
      (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000;
  });
}

Deno.test("settle: a DLQ send refused for a bad attribute parks poison: V8's reason for a body starting with an emoji reaches the DLQ", async () => {
  await setup(async ({ sqs, settler, fallbacks, receive }) => {
    const body = "😀 is not JSON";
    const parsed = parseMessage(body);
    assert.ok(!parsed.ok);
    assert.ok(!wellFormed(parsed.reason), `V8 quotes a lone surrogate: ${parsed.reason}`);
    await sqs.send("work", body);
    const result = await settler.deadLetter(
      copyOf(await receive(), body),
      "VALIDATION",
      parsed.reason,
    );
    assert.equal(result, "done");
    const [copy] = await sqs.messages("dlq");
    assert.equal(copy?.body, body, "byte for byte");
    const reason = copy!.messageAttributes.sluice_reason!.StringValue!;
    assert.ok(wellFormed(reason), reason);
    assert.match(reason, /^invalid JSON: /);
    assert.equal(copy!.messageAttributes.sluice_error!.StringValue, "VALIDATION");
    assert.equal((await sqs.messages("work")).length, 0, "the original is deleted");
    assert.deepEqual(fallbacks, [], "a sanitised reason needs no fallback");
  });
});

Deno.test("settle: a DLQ send refused for a bad attribute parks poison: control characters, a cut pair, an empty reason", async () => {
  await setup(async ({ sqs, settler, receive }) => {
    for (const reason of ["ctrl \u0000\u001b[2J", "a".repeat(255) + "😀😀", "", "\ufffe"]) {
      await sqs.send("work", "x");
      assert.equal(
        await settler.deadLetter(copyOf(await receive(), "x"), "VALIDATION", reason),
        "done",
      );
    }
    const reasons = (await sqs.messages("dlq")).map((m) =>
      m.messageAttributes.sluice_reason!.StringValue!
    );
    assert.equal(reasons.length, 4);
    for (const r of reasons) {
      assert.ok(wellFormed(r) && r !== "", JSON.stringify(r));
      assert.ok([...r].length <= 256, "at most 256 code points");
    }
    assert.equal(reasons[2], "no reason given");
  });
});

Deno.test("settle: a DLQ send refused for a bad attribute parks poison: a refusal falls back once to a minimal ASCII reason", async () => {
  await setup(async ({ sqs, settler, fallbacks, receive }) => {
    await sqs.send("work", "x");
    // SQS may refuse what we think is fine (a rule we do not know): one fallback, then done.
    sqs.respond(
      "SendMessage",
      sqsError("InvalidParameterValue", {
        message:
          "Message (user) attribute 'sluice_reason' value contains invalid binary character '#xFFFD'.",
      }),
    );
    const result = await settler.deadLetter(
      copyOf(await receive(), "x"),
      "REJECTED",
      "HTTP 400: naïve ✓",
    );
    assert.equal(result, "done");
    assert.deepEqual(fallbacks, ["InvalidParameterValue"]);
    const [copy] = await sqs.messages("dlq");
    assert.equal(copy!.messageAttributes.sluice_reason!.StringValue, "HTTP 400: na?ve ?");
    assert.equal((await sqs.messages("work")).length, 0);

    // Refused twice: give up (false), nothing deleted, no third attempt.
    await sqs.send("work", "y");
    const handle = await receive();
    const refusal = sqsError("InvalidMessageContents", { message: "Invalid characters" });
    sqs.respond("SendMessage", refusal, refusal);
    const sends = sqs.requestsFor("SendMessage").length;
    assert.equal(await settler.deadLetter(copyOf(handle, "y"), "REJECTED", "r"), false);
    assert.equal(sqs.requestsFor("SendMessage").length - sends, 2);
    assert.equal((await sqs.messages("work")).length, 1);
  });
});

Deno.test("settle: a dead-letter copy keeps the message's redrive history, within SQS's limits", async () => {
  await setup(async ({ sqs, settler, receive }) => {
    const str = (v: string) => ({ DataType: "String", StringValue: v });
    const history = {
      sluice_redrive_run: str("run-1"),
      sluice_redriven_at: str("2026-01-01T00:00:00.000Z"),
      sluice_last_error: str("REJECTED"),
      sluice_last_reason: str("HTTP 400: bad"),
      trace_id: str("t-1"),
    };
    await sqs.send("work", "x");
    assert.equal(
      await settler.deadLetter(copyOf(await receive(), "x", history), "VALIDATION", "again"),
      "done",
    );
    const [copy] = await sqs.messages("dlq");
    const values = Object.fromEntries(
      Object.entries(copy!.messageAttributes).map(([k, v]) => [k, v.StringValue]),
    );
    assert.deepEqual(values, {
      sluice_error: "VALIDATION",
      sluice_reason: "again",
      sluice_redrive_run: "run-1",
      sluice_redriven_at: "2026-01-01T00:00:00.000Z",
      sluice_last_error: "REJECTED",
      sluice_last_reason: "HTTP 400: bad",
    });
    // A body at the 1 MiB limit: the history that does not fit is left out, the copy still goes.
    const big = "b".repeat(1024 * 1024 - 120);
    await sqs.send("work", big);
    assert.equal(
      await settler.deadLetter(copyOf(await receive(), big, history), "VALIDATION", "big"),
      "done",
    );
    const kept = Object.keys((await sqs.messages("dlq"))[1]!.messageAttributes);
    assert.ok(
      kept.includes("sluice_redrive_run") && !kept.includes("sluice_last_reason"),
      `${kept}`,
    );
  });
});

const REAL_STALE = [
  {
    Code: "InvalidParameterValue",
    Message:
      "Value AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.",
  },
  {
    Code: "ReceiptHandleIsInvalid",
    Message: 'The input receipt handle "AQEBzWwaftRI0KuVm4tP" is not a valid receipt handle.',
  },
  {
    Code: "AWS.SimpleQueueService.MessageNotInflight",
    Message: "Message does not exist or is not available for visibility timeout change.",
  },
];

Deno.test("settle: a visibility change on a stale handle: real SQS's three answers are stale in batch entries", async () => {
  await setup(async ({ sqs, settler, stale, receive }) => {
    await sqs.send("work", "x");
    const handle = await receive();
    for (const failure of REAL_STALE) {
      sqs.respond("ChangeMessageVisibilityBatch", {
        body: { Successful: [], Failed: [{ Id: "0", SenderFault: true, ...failure }] },
      });
      assert.equal(await settler.changeVisibility(handle, 30), "stale", failure.Code);
    }
    assert.deepEqual(stale, REAL_STALE.map((f) => `visibility ${f.Code}`));
    // Another InvalidParameterValue is not a stale handle: it is an error.
    sqs.respond("ChangeMessageVisibilityBatch", {
      body: {
        Successful: [],
        Failed: [{
          Id: "0",
          SenderFault: true,
          Code: "InvalidParameterValue",
          Message: "Value 50000 for parameter VisibilityTimeout is invalid.",
        }],
      },
    });
    await assert.rejects(settler.changeVisibility(handle, 30), /VisibilityTimeout is invalid/);
  });
});

Deno.test("settle: a visibility change on a stale handle: real SQS's answer to a whole request is stale too", async () => {
  await setup(async ({ sqs, settler, stale, receive }) => {
    await sqs.send("work", "x");
    const handle = await receive();
    sqs.respond(
      "ChangeMessageVisibilityBatch",
      sqsFaults.staleVisibility("AQEBzWwaftRI0KuVm4tP+/7q1rGgNqicHq"),
    );
    assert.equal(await settler.changeVisibility(handle, 30), "stale");
    assert.deepEqual(stale, ["visibility InvalidParameterValue"]);
  });
});

Deno.test("settle: a visibility change on a stale handle: the heartbeat logs it as lost once and stops extending it", async () => {
  await setup(async ({ sqs, settler, stale, receive }) => {
    await sqs.send("work", "x");
    const handle = await receive();
    sqs.setDefault("ChangeMessageVisibilityBatch", {
      body: { Successful: [], Failed: [{ Id: "0", SenderFault: true, ...REAL_STALE[1]! }] },
    });
    const clock = new FakeClock({ start: 0 });
    const lost: string[] = [];
    const heartbeat = new VisibilityHeartbeat({
      extend: (h, s) => settler.changeVisibility(h, s),
      visibilityTimeoutSeconds: 10,
      clock,
      onLost: (_h, reason) => lost.push(reason),
    });
    heartbeat.track({ receiptHandle: handle }, 0, 10);
    clock.set(6000);
    assert.equal(heartbeat.beat(), 1);
    for (let i = 0; i < 100 && lost.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(lost, ["receipt handle is stale"]);
    clock.set(20_000);
    assert.equal(heartbeat.beat(), 0, "a stale handle is not extended again");
    assert.equal(stale.length, 1);
  });
});

Deno.test("settle: a delete refused once (throttled) lands on a retry; a stale first answer is not retried", async () => {
  await setup(async ({ sqs, settler, stale, receive }) => {
    await sqs.send("work", "x");
    const handle = await receive();
    sqs.respond("DeleteMessageBatch", {
      body: {
        Successful: [],
        Failed: [{ Id: "0", SenderFault: false, Code: "InternalError", Message: "try again" }],
      },
    });
    assert.equal(await settler.delete(handle), "done");
    const deletes = () => sqs.requests.filter((r) => r.action === "DeleteMessageBatch").length;
    assert.equal(deletes(), 2, "the first failure, then the retry");
    assert.equal((await sqs.messages("work")).length, 0);

    await sqs.send("work", "y");
    const second = await receive();
    sqs.respond("DeleteMessageBatch", {
      body: { Successful: [], Failed: [{ Id: "0", SenderFault: true, ...REAL_STALE[1]! }] },
    });
    assert.equal(await settler.delete(second), "stale");
    assert.equal(deletes(), 3, "a stale handle is asked once");
    assert.deepEqual(stale, [`delete ${REAL_STALE[1]!.Code}`]);
  });
});

Deno.test("settle: a DLQ send or re-queue that lands on a retry after a lost answer is reported (SQS may hold two copies)", async () => {
  const ambiguous: string[] = [];
  let sends = 0;
  const failFirst = () =>
    ++sends % 2 === 1
      ? Promise.reject(new SqsError("SendMessage", "NetworkError", 0, "connection reset"))
      : Promise.resolve({ messageId: "id" });
  const settler = new Settler({
    sqs: {
      sendMessage: failFirst,
      sendMessageCopy: failFirst,
      deleteMessageBatch: () => Promise.resolve({ successful: ["0"], failed: [] }),
      changeMessageVisibilityBatch: () => Promise.resolve({ successful: ["0"], failed: [] }),
    },
    queueUrl: "q",
    dlqUrl: () => "dlq",
    batchWaitMs: 1,
    clock: { ...systemClock, sleep: () => Promise.resolve() },
    onAmbiguousSend: (kind) => ambiguous.push(kind),
  });
  assert.equal(
    await settler.deadLetter(
      { receiptHandle: "h", body: "body", messageAttributes: {} },
      "VALIDATION",
      "bad",
    ),
    "done",
  );
  assert.equal(
    await settler.requeue({ receiptHandle: "h2", body: "b", messageAttributes: {} }),
    "done",
  );
  assert.deepEqual(ambiguous, ["dlq_send", "requeue"]);
});

Deno.test("settle: on a FIFO queue the DLQ copy and a re-queued copy keep the group, with a deduplication id from the SQS MessageId", async () => {
  const sent: Array<{ queue: string; fifo: unknown }> = [];
  const settler = new Settler({
    sqs: {
      sendMessage: (queue, _body, _attrs, _signal, fifo) => {
        sent.push({ queue, fifo });
        return Promise.resolve({ messageId: "x" });
      },
      sendMessageCopy: (queue, _body, _attrs, _signal, fifo) => {
        sent.push({ queue, fifo });
        return Promise.resolve({ messageId: "y" });
      },
      deleteMessageBatch: () => Promise.resolve({ successful: ["0"], failed: [] }),
      changeMessageVisibilityBatch: () => Promise.resolve({ successful: ["0"], failed: [] }),
    },
    queueUrl: "q.fifo",
    dlqUrl: () => "dlq.fifo",
    fifo: true,
    batchWaitMs: 1,
    clock: systemClock,
  });
  const message = {
    messageId: "5fea7756-0ea4-451a-a703-a558b933e274",
    receiptHandle: "h",
    body: "{}",
    attributes: { MessageGroupId: "customer-7" },
    messageAttributes: {},
  };
  assert.equal(await settler.deadLetter(message, "VALIDATION", "bad"), "done");
  assert.equal(await settler.requeue(message), "done");
  assert.deepEqual(sent, [
    {
      queue: "dlq.fifo",
      fifo: { groupId: "customer-7", deduplicationId: `dlq-${message.messageId}` },
    },
    {
      queue: "q.fifo",
      fifo: { groupId: "customer-7", deduplicationId: `rq-${message.messageId}` },
    },
  ]);
  await assert.rejects(
    settler.deadLetter({ ...message, attributes: {} }, "VALIDATION", "bad"),
    /MissingMessageGroupId/,
  );
});
