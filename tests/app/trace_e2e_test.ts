/**
 * Trace context end to end, in process: fauxqs, fake downstreams and an OTLP receiver on
 * 127.0.0.1. fauxqs keeps no AWSTraceHeader, so a fetch in front of the worker's SQS client adds
 * it to ReceiveMessage answers that asked for it, as SQS does.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../src/app/config.ts";
import { startWorker } from "../../src/app/start_worker.ts";
import { type ReceivedSpan, startOtlpReceiver } from "../../lab/otlp_receiver.ts";
import { type LabEnv, serveJson, startLabEnv, waitFor } from "../support/lab_env.ts";

const T1 = "4bf92f3577b34da6a3ce929d0e0e4736";
const P1 = "00f067aa0ba902b7";
/** The producer's trace of the message that comes through an SNS topic. */
const T2 = "0af7651916cd43dd8448eb211c80319c";
const XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
const XRAY_TRACE = "5759e988bd862e3fe1be46a994272793";
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

const body = (id: string, carrier = "none") =>
  JSON.stringify({
    message_id: id,
    user_id: `u-${id}`,
    event_ts: 1735689600,
    payload: { carrier },
  });

/** The worker's fetch: ReceiveMessage answers get the X-Ray header fauxqs drops, when asked. */
function withAwsTraceHeader(asked: { count: number }): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    const target = new Headers(init?.headers).get("x-amz-target");
    if (target !== "AmazonSQS.ReceiveMessage") return response;
    const wanted = JSON.parse(String(init?.body)).MessageSystemAttributeNames ?? [];
    const answer = await response.json();
    if (!wanted.includes("AWSTraceHeader")) return Response.json(answer);
    asked.count++;
    for (const m of answer.Messages ?? []) {
      if (String(m.Body).includes('"carrier":"xray"')) {
        m.Attributes = { ...m.Attributes, AWSTraceHeader: XRAY };
      }
    }
    return Response.json(answer, { status: response.status });
  };
}

interface Seen {
  validator: Array<{ id: string; traceparent: string | null; tracestate: string | null }>;
  enrich: Array<{ path: string; traceparent: string | null }>;
}

function downstreams(seen: Seen) {
  const enrich = serveJson(async (request, url) => {
    seen.enrich.push({ path: url.pathname, traceparent: request.headers.get("traceparent") });
    if (request.method === "POST") {
      const { user_ids } = await request.json() as { user_ids: string[] };
      return Response.json({
        users: user_ids.map((user_id) => ({ user_id, segment: "casual" })),
        missing: [],
        errors: [],
      });
    }
    const id = decodeURIComponent(url.pathname.split("/").pop()!);
    return Response.json({ user_id: id, segment: "casual" });
  });
  const validator = serveJson(async (request) => {
    const doc = await request.json() as { message_id: string };
    seen.validator.push({
      id: doc.message_id,
      traceparent: request.headers.get("traceparent"),
      tracestate: request.headers.get("tracestate"),
    });
    return Response.json({ status: "accepted" });
  });
  return { enrich, validator };
}

async function send(lab: LabEnv, id: string, attributes: Record<string, string> = {}) {
  const MessageAttributes = Object.fromEntries(
    Object.entries(attributes).map(([k, v]) => [k, { DataType: "String", StringValue: v }]),
  );
  await lab.admin.call("SendMessage", {
    QueueUrl: lab.queueUrl,
    MessageBody: body(id, id.startsWith("xray") ? "xray" : "none"),
    ...(attributes ? { MessageAttributes } : {}),
  });
}

/**
 * A message as SNS delivers it to a subscribed queue without raw delivery: the producer's
 * traceparent among the notification's MessageAttributes, none on the SQS message.
 */
async function sendThroughSns(lab: LabEnv, id: string) {
  const notification = {
    Type: "Notification",
    MessageId: "6a1f4c6e-3f1b-5b4e-9e1a-2c3d4e5f6a7b",
    TopicArn: "arn:aws:sns:us-east-1:000000000000:events",
    Message: body(id),
    Timestamp: "2026-12-07T12:00:00.000Z",
    SignatureVersion: "1",
    MessageAttributes: { traceparent: { Type: "String", Value: `00-${T2}-${P1}-01` } },
  };
  await lab.admin.call("SendMessage", {
    QueueUrl: lab.queueUrl,
    MessageBody: JSON.stringify(notification),
  });
}

/** The messages of one run: one per carrier, an invalid one, and plain ones. */
async function sendAll(lab: LabEnv): Promise<string[]> {
  await send(lab, "w3c", { traceparent: `00-${T1}-${P1}-01`, tracestate: "vendor=x" });
  await sendThroughSns(lab, "sns");
  await send(lab, "xray-1");
  await send(lab, "bad", { traceparent: `00-${T1.toUpperCase()}-${P1}-01` });
  await send(lab, "bad-2", { traceparent: "00-garbage" });
  const plain = Array.from({ length: 10 }, (_, i) => `plain-${i}`);
  for (const id of plain) await send(lab, id);
  return ["w3c", "sns", "xray-1", "bad", "bad-2", ...plain];
}

interface RunOptions {
  /** OTEL_* variables, given the receiver's URL; undefined: export off. */
  exportEnv?: (receiverUrl: string) => Record<string, string>;
  mode?: "ok" | "fail" | "stall";
  /** More plain messages. */
  extra?: number;
}

async function run(options: RunOptions) {
  const lab = await startLabEnv();
  const seen: Seen = { validator: [], enrich: [] };
  const { enrich, validator } = downstreams(seen);
  const receiver = startOtlpReceiver();
  receiver.mode = options.mode ?? "ok";
  const asked = { count: 0 };
  const lines: string[] = [];
  try {
    const ids = await sendAll(lab);
    for (let i = 0; i < (options.extra ?? 0); i++) {
      ids.push(`more-${i}`);
      await send(lab, `more-${i}`);
    }
    const env = lab.env({ enrich: enrich.url, validator: validator.url }, {
      LOG_LEVEL: "debug",
      ...options.exportEnv?.(receiver.url),
    });
    const worker = startWorker(loadConfig(env), {
      env,
      fetch: withAwsTraceHeader(asked),
      write: (line) => lines.push(line),
    });
    let stopMs = 0;
    try {
      await waitFor(
        () => worker.metrics.messages.get({ outcome: "accepted" }) === ids.length,
        "every message accepted",
      );
    } finally {
      const stopping = performance.now();
      await worker.stop();
      stopMs = performance.now() - stopping;
    }
    const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const dropped = {
      queue_full: worker.metrics.spansDropped.get({ reason: "queue_full" }),
      export_failed: worker.metrics.spansDropped.get({ reason: "export_failed" }),
    };
    const depth = await lab.depth();
    return { ids, seen, spans: receiver.spans(), asked, logs, lab, dropped, stopMs, depth };
  } finally {
    receiver.mode = "ok";
    await receiver.close();
    await enrich.close();
    await validator.close();
    await lab.close();
  }
}

const EXPORT = (url: string) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: url,
  OTEL_BSP_SCHEDULE_DELAY: "50",
});

const traceOf = (seen: Seen, id: string) =>
  TRACEPARENT.exec(seen.validator.find((v) => v.id === id)?.traceparent ?? "")?.[1];

for (const exportOn of [false, true]) {
  const mode = exportOn ? "export on" : "export off";
  Deno.test(`trace e2e: ${mode}: every validator submission carries a well-formed traceparent; each carrier keeps its trace id (traceparent, AWSTraceHeader, an SNS envelope)`, async () => {
    const { ids, seen, asked } = await run(exportOn ? { exportEnv: EXPORT } : {});
    assert.ok(asked.count > 0, "ReceiveMessage asked for AWSTraceHeader");
    assert.equal(seen.validator.length, ids.length);
    for (const v of seen.validator) assert.match(v.traceparent ?? "", TRACEPARENT, v.id);
    assert.equal(traceOf(seen, "w3c"), T1, "traceparent carrier");
    assert.equal(seen.validator.find((v) => v.id === "w3c")?.tracestate, "vendor=x");
    assert.equal(traceOf(seen, "xray-1"), XRAY_TRACE, "AWSTraceHeader carrier");
    assert.equal(traceOf(seen, "sns"), T2, "traceparent among an SNS envelope's attributes");
    // An invalid traceparent is ignored: a new trace, the message accepted like any other.
    for (const id of ["bad", "bad-2"]) {
      const trace = traceOf(seen, id);
      assert.ok(trace && trace !== T1 && trace !== XRAY_TRACE, id);
    }
    const plain = new Set(
      ids.filter((id) => id.startsWith("plain")).map((id) => traceOf(seen, id)),
    );
    assert.equal(plain.size, 10, "a message without context starts its own trace");
    for (const e of seen.enrich) assert.match(e.traceparent ?? "", TRACEPARENT, e.path);
  });
}

/** Child spans of `parent`, by name. */
function children(spans: readonly ReceivedSpan[], parent: ReceivedSpan): Map<string, ReceivedSpan> {
  return new Map(spans.filter((s) => s.parentSpanId === parent.spanId).map((s) => [s.name, s]));
}

Deno.test("trace e2e: export on: each message's span arrives with its validator and delete children, decoded by the official definitions", async () => {
  const { ids, seen, spans, logs, lab } = await run({ exportEnv: EXPORT });
  const queue = lab.queueUrl.split("/").pop()!;
  const messageSpans = spans.filter((s) => s.name === `process ${queue}`);
  assert.equal(messageSpans.length, ids.length, "one span per message");
  const batchSpans = spans.filter((s) => s.name === "enrichment batch");
  const linked = new Set(batchSpans.flatMap((b) => b.links.map((l) => l.spanId)));
  for (const span of messageSpans) {
    const id = String(span.attributes["sluice.message_id"]);
    assert.equal(span.kind, 5, "consumer");
    assert.equal(span.attributes["messaging.system"], "aws_sqs");
    assert.equal(span.attributes["messaging.destination.name"], queue);
    assert.equal(typeof span.attributes["messaging.message.id"], "string");
    assert.equal(span.attributes["sluice.outcome"], "accepted");
    assert.equal(span.attributes["sluice.receive_count"], 1);
    const kids = children(spans, span);
    const submit = kids.get("POST validator");
    assert.ok(submit, `${id}: validator child`);
    assert.ok(kids.get("DeleteMessage"), `${id}: delete child`);
    assert.equal(submit.traceId, span.traceId);
    // The request carried the child span as its parent.
    const header = seen.validator.find((v) => v.id === id)!.traceparent!;
    assert.equal(header, `00-${span.traceId}-${submit.spanId}-01`);
    assert.ok(
      kids.has("GET enrichment") || linked.has(span.spanId),
      `${id}: its lookup is a child, or a batch links to it`,
    );
    assert.ok(BigInt(span.endTimeUnixNano) >= BigInt(submit.endTimeUnixNano));
    // Every per-message log line names the trace.
    const line = logs.find((l) => l.msg === "message" && l.message_id === id)!;
    assert.equal(line.trace_id, span.traceId);
    assert.equal(line.span_id, span.spanId);
  }
  const w3c = messageSpans.find((s) => s.attributes["sluice.message_id"] === "w3c")!;
  assert.equal(w3c.traceId, T1);
  assert.equal(w3c.parentSpanId, P1);
  assert.equal(w3c.traceState, "vendor=x");
  const xray = messageSpans.find((s) => s.attributes["sluice.message_id"] === "xray-1")!;
  assert.equal(xray.traceId, XRAY_TRACE);
  assert.equal(xray.parentSpanId, "53995c3f42cd8ad8");
  const sns = messageSpans.find((s) => s.attributes["sluice.message_id"] === "sns")!;
  assert.equal(sns.traceId, T2);
  assert.equal(sns.parentSpanId, P1);
  for (const batch of batchSpans) {
    assert.ok(batch.traceId !== T1 && batch.links.length >= 2, "a batch is its own trace");
    const call = spans.find((s) => s.parentSpanId === batch.spanId);
    assert.equal(call?.name, "POST enrichment");
  }
});

for (const mode of ["stall", "fail"] as const) {
  Deno.test(`trace e2e: a receiver that ${mode === "stall" ? "hangs" : "fails"} loses no message and stalls nothing; dropped spans are counted`, async () => {
    const { ids, seen, dropped, stopMs, depth } = await run({
      mode,
      extra: 30,
      exportEnv: (url) => ({
        ...EXPORT(url),
        OTEL_EXPORTER_OTLP_TIMEOUT: "30000",
        OTEL_BSP_MAX_QUEUE_SIZE: "8",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "4",
        SHUTDOWN_GRACE_SECONDS: "2",
      }),
    });
    assert.equal(
      new Set(seen.validator.map((v) => v.id)).size,
      ids.length,
      "every message submitted",
    );
    assert.equal(depth, 0, "every message deleted");
    const lost = dropped.queue_full + dropped.export_failed;
    assert.ok(lost > 0, `spans dropped and counted: ${JSON.stringify(dropped)}`);
    // A hung export is abandoned after the trace flush's bound (5 s), not waited for.
    assert.ok(stopMs < 7000, `stopped in ${Math.round(stopMs)} ms`);
  });
}

Deno.test("trace e2e: a receiver that is down (nothing listening) costs no message", async () => {
  const { ids, seen, dropped, depth } = await run({
    extra: 10,
    exportEnv: () => ({ ...EXPORT("http://127.0.0.1:9"), OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "4" }),
  });
  assert.equal(new Set(seen.validator.map((v) => v.id)).size, ids.length);
  assert.equal(depth, 0);
  assert.ok(dropped.export_failed > 0, JSON.stringify(dropped));
});
