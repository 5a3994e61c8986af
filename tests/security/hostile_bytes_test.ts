/**
 * Every place sluice writes text a person or a log viewer reads: the JSON and pretty logs, `dlq
 * peek`, `dlq redrive`, `check-config` and /readyz. Each is fed message bodies, attribute values,
 * AWS error texts and HTTP headers holding C0 controls (CR, LF, ESC, BEL, NUL), DEL, C1 controls
 * (CSI U+009B, NEL U+0085), bidirectional controls (U+202E, U+2066) and whole ESC sequences, as a
 * producer, a broken endpoint or a hostile downstream could send them; none may come out raw.
 * A header carries bytes, so it brings C1 characters (0x80-0xff arrive as U+0080-U+00FF).
 */
import assert from "node:assert/strict";
import { createLogger } from "../../src/lib/logger.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { createServer } from "../../src/app/server.ts";
import { healthOf } from "../../src/app/health.ts";
import { Registry } from "../../src/lib/metrics.ts";
import { fetchNoRedirect } from "../../src/lib/guarded_fetch.ts";
import { RedirectError } from "../../src/lib/errors.ts";
import { startLocalSqs } from "../support/local_sqs.ts";
import { sqsError } from "../../lab/sqs_answers.ts";
import { sluiceInProcess, withQueues } from "../support/cli_in_process.ts";
import { runWorker, serveJson, waitFor } from "../support/lab_env.ts";
import { msg } from "../support/fault_kit.ts";
import { assertInert, HOSTILE, hostileReceive } from "../support/hostile_text.ts";
import { sluice } from "../support/sluice_cli.ts";

/** The bytes of a Location header: C1 controls, and no URL, so it is reported as sent. */
const HOSTILE_LOCATION = "http://[\u009b2J\u0085\u009d0;owned\u009c";

/** The escaped form of HOSTILE's CSI and RLO: proof the hostile text did reach the sink. */
const ESCAPED_SEEN = /csi\\u009b31m nel\\u0085 rlo\\u202e/;

/** A fields object with the hostile text everywhere a log call can carry it. */
function hostileFields(): Record<string, unknown> {
  return {
    reason: HOSTILE,
    [`key ${HOSTILE}`]: 1,
    message_id: HOSTILE,
    list: [HOSTILE, { inner: HOSTILE }],
    doc: { body: HOSTILE, deep: { more: [HOSTILE] } },
    error: new Error(HOSTILE),
  };
}

function logLines(format: "json" | "pretty"): string[] {
  const lines: string[] = [];
  const log = createLogger({ format, write: (line) => lines.push(line), clock: systemClock });
  log.warn(`msg ${HOSTILE}`, hostileFields());
  log.child({ worker: HOSTILE }).error(HOSTILE, { location: HOSTILE_LOCATION });
  // A field it cannot serialize still leaves a line, with the message in it.
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  log.error(`msg ${HOSTILE}`, { circular });
  return lines;
}

Deno.test("hostile bytes: the JSON log escapes them in the message, keys, values, arrays, objects, errors and the unserializable-field line", () => {
  const lines = logLines("json");
  assertInert("json log", lines);
  assert.equal(lines.length, 3);
  const [first, second, third] = lines.map((line) => JSON.parse(line));
  assert.equal(first.msg, `msg ${HOSTILE}`, "decodes to the original");
  assert.deepEqual(first.list, [HOSTILE, { inner: HOSTILE }]);
  assert.deepEqual(first.doc.deep.more, [HOSTILE]);
  assert.equal(first.error.message, HOSTILE);
  assert.match(lines[0]!, ESCAPED_SEEN);
  assert.equal(first[`key ${HOSTILE}`], 1);
  assert.equal(second.worker, HOSTILE);
  assert.equal(second.location, HOSTILE_LOCATION);
  assert.equal(third.msg, `msg ${HOSTILE}`);
  assert.equal(third.log_error, "fields not serializable");
});

Deno.test("hostile bytes: the pretty log escapes them in the message, keys, values, arrays, objects and errors", () => {
  const lines = logLines("pretty");
  assertInert("pretty log", lines);
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, ESCAPED_SEEN);
  assert.match(lines[0]!, / list=\["nl\\n cr\\r tab\\t esc\\u001b\[2J osc\\u001b\]0;owned\\u0007/);
  assert.match(lines[0]!, /"more":\["nl\\n .* csi\\u009b31m nel\\u0085 rlo\\u202e/);
  assert.match(lines[0]!, / error="Error: nl\\n cr\\r/);
  assert.match(lines[1]!, /location="http:\/\/\[\\u009b2J\\u0085/);
});

/** "work" dead-letters to "dlq", which holds one message (the depth a redrive is bound by). */
const DLQ_QUEUES = {
  dlq: {},
  work: {
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: "arn:aws:sqs:us-east-1:000000000000:dlq",
      maxReceiveCount: 3,
    }),
  },
};

Deno.test("hostile bytes: dlq peek in text (the real entry's stdout and stderr) and JSON", async () => {
  await withQueues(DLQ_QUEUES, async (sqs, env) => {
    await sqs.send("dlq", "filler");
    sqs.respond("ReceiveMessage", hostileReceive(true));
    const text = await sluice(["dlq", "peek", "1"], env);
    assert.equal(text.code, 0, text.stderr);
    assertInert("peek", (text.stdout + text.stderr).split("\n"));
    assert.equal(
      text.stdout.trimEnd().split("\n").length,
      2,
      "a line for the message, one for its body",
    );
    assert.match(
      text.stdout,
      /esc\\u001b\[2J osc\\u001b\]0;owned\\u0007 nul\\u0000 bel\\u0007 del\\u007f/,
    );
    assert.match(text.stdout, ESCAPED_SEEN);

    sqs.respond("ReceiveMessage", hostileReceive(true));
    const json = await sluiceInProcess(["dlq", "peek", "1", "--output", "json"], env);
    assertInert("peek --output json", [...json.lines, ...json.status]);
    const row = JSON.parse(json.stdout).messages[0];
    assert.equal(row.reason, HOSTILE, "decodes to the original");
    assert.equal(row.category, `VALIDATION${HOSTILE}`);
    assert.equal(row.sqs_message_id, `id-${HOSTILE}`);
    assert.ok(row.body.endsWith(HOSTILE));
  });
});

Deno.test("hostile bytes: dlq redrive in text and JSON, dry run and a send SQS refuses with a hostile code", async () => {
  await withQueues(DLQ_QUEUES, async (sqs, env) => {
    await sqs.send("dlq", "filler");
    sqs.respond("ReceiveMessage", hostileReceive(true));
    const dry = await sluiceInProcess(["dlq", "redrive", "--dry-run"], env);
    assertInert("redrive --dry-run", [...dry.lines, ...dry.status]);
    assert.match(dry.stdout, /would stay .* unreadable DeadLetterQueueSourceArn "arn:nl\\n cr\\r/);

    sqs.respond("ReceiveMessage", hostileReceive(false));
    const json = await sluiceInProcess(["dlq", "redrive", "--dry-run", "--output", "json"], env);
    assertInert("redrive --dry-run --output json", [...json.lines, ...json.status]);
    const row = JSON.parse(json.stdout).would_move[0];
    assert.equal(row.reason, HOSTILE, "decodes to the original");
    assert.equal(row.category, `VALIDATION${HOSTILE}`);
    assert.equal(row.sqs_message_id, `id-${HOSTILE}`);

    // A message without a source, and SQS refusing its entry with a hostile code.
    sqs.respond("ReceiveMessage", hostileReceive(false));
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

Deno.test("hostile bytes: dlq stats: SQS's error text about the DLQ", async () => {
  await withQueues(DLQ_QUEUES, async (sqs, env) => {
    // The main queue's attributes as they are, then the DLQ's depth refused with a hostile text.
    sqs.respond(
      "GetQueueAttributes",
      { passThrough: true },
      sqsError("AccessDenied", { status: 403, message: HOSTILE }),
    );
    const stats = await sluiceInProcess(["dlq", "stats"], env);
    assert.equal(stats.code, 1, stats.stdout + stats.stderr);
    assertInert("dlq stats", [...stats.lines, ...stats.status]);
    assert.match(stats.stderr, ESCAPED_SEEN);
  });
});

/**
 * A server on 127.0.0.1 that reads each request (head and declared body) and answers `answer`
 * byte for byte, then closes: what Deno.serve would refuse to send.
 */
function serveRaw(answer: string): { url: string; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const bytes = Uint8Array.from(answer, (char) => char.charCodeAt(0));
  const open = new Set<Deno.Conn>();
  const handled = new Set<Promise<void>>();
  const handle = async (conn: Deno.Conn) => {
    const latin1 = new TextDecoder("latin1");
    const buffer = new Uint8Array(16 * 1024);
    let request = "";
    try {
      for (;;) {
        const end = request.indexOf("\r\n\r\n");
        const length = Number(/content-length:\s*(\d+)/i.exec(request)?.[1] ?? 0);
        if (end >= 0 && request.length - end - 4 >= length) break;
        const n = await conn.read(buffer);
        if (n === null) return;
        request += latin1.decode(buffer.subarray(0, n));
      }
      await conn.write(bytes);
    } catch {
      // The client went away: nothing to answer.
    } finally {
      open.delete(conn);
      conn.close();
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      open.add(conn);
      const done = handle(conn);
      handled.add(done);
      done.finally(() => handled.delete(done));
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    close: async () => {
      listener.close();
      for (const conn of open) conn.close();
      await Promise.allSettled([accepting, ...handled]);
    },
  };
}

/** A redirect whose Location header is HOSTILE_LOCATION's bytes. */
const REDIRECT_ANSWER = `HTTP/1.1 302 Found\r\nLocation: ${HOSTILE_LOCATION}\r\n` +
  "Content-Length: 0\r\nConnection: close\r\n\r\n";

Deno.test("hostile bytes: check-config --probe in text and JSON: SQS's answers, the probes' Location, the table's error", async () => {
  const downstream = serveRaw(REDIRECT_ANSWER);
  const table = serveJson(async (request) => {
    await request.text();
    const error = { __type: "com.amazonaws.dynamodb.v20120810#ValidationException" };
    return Response.json({ ...error, message: HOSTILE }, { status: 400 });
  });
  try {
    await withQueues(DLQ_QUEUES, async (sqs, queueEnv) => {
      const env = {
        ...queueEnv,
        ENRICH_URL: downstream.url,
        VALIDATOR_URL: `${downstream.url}/ingest`,
        IDEMPOTENCY_TABLE: "sluice-dedupe",
        AWS_ENDPOINT_URL_DYNAMODB: table.url,
      };
      const script = () => {
        const attributes = { ...DLQ_QUEUES.work, ApproximateNumberOfMessages: HOSTILE };
        sqs.respond(
          "GetQueueAttributes",
          { body: { Attributes: attributes } },
          sqsError("AccessDenied", { status: 403, message: HOSTILE }),
        );
      };
      script();
      const text = await sluiceInProcess(["check-config", "--probe"], env);
      assert.equal(text.code, 1, text.stdout + text.stderr);
      assertInert("check-config --probe", [...text.lines, ...text.status]);
      assert.match(text.stdout, /SQS queue: .* \(nl\\n cr\\r tab\\t esc\\u001b\[2J .* visible\)/);
      assert.match(text.stdout, /ENRICH_URL redirects to http:\/\/\[\\u009b2J\\u0085/);
      assert.match(text.stdout, /VALIDATOR_URL redirects to http:\/\/\[\\u009b2J\\u0085/);
      assert.match(text.stdout, /DLQ: .*csi\\u009b31m/);
      assert.match(text.stdout, /IDEMPOTENCY_TABLE .*csi\\u009b31m nel\\u0085 rlo\\u202e/);

      script();
      const json = await sluiceInProcess(["check-config", "--probe", "--json"], env);
      assertInert("check-config --probe --json", [...json.lines, ...json.status]);
      const lines: string[] = JSON.parse(json.stdout).probes.map((p: { line: string }) => p.line);
      assert.ok(lines.some((line) => line.includes(HOSTILE_LOCATION)), "decodes to the original");
      assert.ok(lines.some((line) => line.includes("rlo\u202e")), JSON.stringify(lines));
    });
  } finally {
    await downstream.close();
    await table.close();
  }
});

Deno.test("hostile bytes: /readyz bodies: a downstream's Location and SQS's error text", async () => {
  const downstream = serveRaw(REDIRECT_ANSWER);
  let redirect: RedirectError | undefined;
  try {
    await fetchNoRedirect(fetch, "validator", `${downstream.url}/ingest`, { method: "POST" })
      .catch((error) => redirect = error);
  } finally {
    await downstream.close();
  }
  assert.ok(redirect instanceof RedirectError, String(redirect));
  assert.equal(redirect.location, HOSTILE_LOCATION, "the header's bytes, as sent");
  const health = () =>
    healthOf({
      starting: false,
      pipelineAlive: true,
      redrive: { known: true, pending: undefined },
      breakers: [{ name: `sqs${HOSTILE}`, state: "open", remainingCooldownMs: 1000 }],
      redirects: [redirect!],
      lastSqsError: HOSTILE,
    });
  const app = createServer({ registry: new Registry(), health });
  const answer = await app.request("/readyz");
  const body = await answer.text();
  assert.equal(answer.status, 503);
  assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
  assertInert("/readyz", [body]);
  const reasons: string[] = JSON.parse(body).reasons;
  assert.ok(reasons.some((r) => r.includes(HOSTILE_LOCATION)), JSON.stringify(reasons));
  assert.ok(reasons.some((r) => r.endsWith(HOSTILE)), JSON.stringify(reasons));
});

Deno.test("hostile bytes: a running worker's /readyz and JSON log: a validator's Location, SQS's error text, a hostile body", async () => {
  const sqs = await startLocalSqs({ queues: DLQ_QUEUES });
  const validator = serveRaw(REDIRECT_ANSWER);
  const enrich = serveJson(async (request, url) => {
    await request.text();
    const user = { user_id: "u-1", segment: "s" };
    const batch = { users: [user], missing: [], errors: [] };
    return Response.json(url.pathname.endsWith(":batch") ? batch : user);
  });
  const env = {
    SQS_QUEUE_URL: sqs.queueUrl("work"),
    AWS_ENDPOINT_URL_SQS: sqs.url,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "t",
    AWS_SECRET_ACCESS_KEY: "t",
    ENRICH_URL: enrich.url,
    VALIDATOR_URL: `${validator.url}/ingest`,
    SQS_RECEIVE_WAIT_SECONDS: "1",
    HTTP_PORT: "0",
    LOG_LEVEL: "info",
  };
  // SQS takes no C0 control but tab, LF and CR in a body: JSON's escapes carry the rest.
  await sqs.send("work", msg("1", "u-1"));
  await sqs.send("work", msg(HOSTILE, "u-1"));
  const worker = runWorker(env);
  let body = "";
  try {
    await waitFor(async () => {
      const answer = await worker.app.request("/readyz");
      body = await answer.text();
      return body.includes("VALIDATOR_URL redirects");
    }, "/readyz to name the redirect");
    // The code as well as the text: /readyz names the code.
    const failure = sqsError(`InternalError${HOSTILE}`, {
      status: 500,
      message: HOSTILE,
      queryError: "AWS.SimpleQueueService.InternalError",
    });
    sqs.setDefault("ReceiveMessage", failure);
    await waitFor(async () => {
      const answer = await worker.app.request("/readyz");
      body = await answer.text();
      return body.includes("last SQS request failed");
    }, "/readyz to name SQS's error");
  } finally {
    await worker.stop(0);
    await validator.close();
    await enrich.close();
    await sqs.close();
  }
  assertInert("/readyz", [body]);
  const reasons: string[] = JSON.parse(body).reasons;
  assert.ok(reasons.some((r) => r.includes(HOSTILE_LOCATION)), JSON.stringify(reasons));
  // SQS's code is cut short in the reason; what is left of it is escaped.
  const sqsReason = reasons.find((r) => r.startsWith("last SQS request failed"));
  assert.ok(
    sqsReason?.includes("InternalErrornl\n cr\r tab\t esc\u001b[2J"),
    JSON.stringify(reasons),
  );
  assertInert("worker log", worker.lines);
  const log = worker.lines.join("\n");
  assert.match(log, /"location":"http:\/\/\[\\u009b2J\\u0085/);
  assert.match(log, ESCAPED_SEEN);
});
