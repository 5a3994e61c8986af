/**
 * Run by tests/e2e/bun_trace_test.ts under Bun: a worker with span export on drains a small
 * queue on fauxqs behind the lab's SQS proxy, its enrichment API, validator and OTLP receiver served
 * by `Bun.serve`; the probe
 * reports each submission's traceparent and each export's raw body as one JSON line on stdout.
 * Imports src/, fauxqs and the proxy's handler; no Deno API.
 */
import { loadConfig } from "../../src/app/config.ts";
import { startWorker } from "../../src/app/start_worker.ts";
import { createSqsProxy } from "../../lab/sqs_proxy.ts";
import { bunVersion, serve, startFauxqs } from "./bun_shared.ts";

bunVersion();

const MESSAGES = 6;
const PRODUCER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const submissions: Array<{ id: string; traceparent: string | null }> = [];
const exports: Array<{ contentType: string; body: string }> = [];
const fauxqs = await startFauxqs();
const sqs = createSqsProxy({ target: fauxqs.endpoint, ownQueueUrls: true });
const servers = {
  sqs: serve(sqs.handle),
  enrich: serve((request) => {
    const id = decodeURIComponent(new URL(request.url).pathname.split("/").pop()!);
    return Response.json({ user_id: id, segment: "casual" });
  }),
  validator: serve(async (request) => {
    const doc = await request.json() as { message_id: string };
    submissions.push({ id: doc.message_id, traceparent: request.headers.get("traceparent") });
    return Response.json({ status: "accepted" });
  }),
  otlp: serve(async (request) => {
    const bytes = new Uint8Array(await request.arrayBuffer());
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    exports.push({ contentType: request.headers.get("content-type") ?? "", body: btoa(binary) });
    return Response.json({});
  }),
};
try {
  sqs.listening(`http://127.0.0.1:${servers.sqs.port}`);
  const call = async (action: string, body: Record<string, unknown>) => {
    const got = await sqs.call(action, body);
    if (got.status !== 200) throw new Error(`SQS ${action}: ${JSON.stringify(got.body)}`);
    return got.body as Record<string, string>;
  };
  const { QueueUrl: queueUrl } = await call("CreateQueue", { QueueName: "traced" });
  for (let i = 0; i < MESSAGES; i++) {
    const body = JSON.stringify({
      message_id: `m${i}`,
      user_id: `u${i}`,
      event_ts: 1,
      payload: {},
    });
    await call("SendMessage", {
      QueueUrl: queueUrl,
      MessageBody: body,
      ...(i === 0
        ? { MessageAttributes: { traceparent: { DataType: "String", StringValue: PRODUCER } } }
        : {}),
    });
  }
  const env: Record<string, string> = {
    SQS_QUEUE_URL: queueUrl!,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "AKIDPROBE",
    AWS_SECRET_ACCESS_KEY: "probe-secret",
    ENRICH_URL: `http://127.0.0.1:${servers.enrich.port}`,
    VALIDATOR_URL: `http://127.0.0.1:${servers.validator.port}`,
    ENRICH_BATCH_MAX: "1",
    SQS_RECEIVE_WAIT_SECONDS: "1",
    LOG_LEVEL: "error",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${servers.otlp.port}`,
  };
  const worker = startWorker(loadConfig(env), { env, write: () => {} });
  const started = Date.now();
  while (submissions.length < MESSAGES && Date.now() - started < 30_000) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The stop flushes the spans still queued (the schedule delay is 5 s).
  await worker.stop(5_000);
  console.log(JSON.stringify({ submissions, exports }));
} finally {
  await Promise.all(Object.values(servers).map((s) => s.stop(true)));
  await fauxqs.close();
}
