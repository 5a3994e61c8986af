/**
 * The memory bound of S3 payloads (docs/payloads.md), measured: N messages each pointing to a
 * distinct object of SIZE bytes, with MAX_IN_FLIGHT 500, against one worker process started as
 * `deno task start`; prints the worker's peak RSS (VmHWM) and the time until every message was
 * accepted. The objects are generated per request by a small S3 stand-in (GetObject only), so the
 * bench's own memory does not hold N × SIZE bytes.
 *
 *   deno run -A bench/payload_rss.ts [--messages 200] [--mb 10] [--budget BYTES]
 */
import { parseArgs } from "node:util";
import { readPeakRssKb } from "../lab/chaos.ts";
import { serveLocal } from "../lab/local_server.ts";
import { pointerBody } from "../lab/sns_s3_admin.ts";
import {
  msg,
  spawnWorker,
  startEnrichFake,
  startValidatorFake,
} from "../tests/support/fault_kit.ts";
import { startLabEnv, waitFor } from "../tests/support/lab_env.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { messages: { type: "string" }, mb: { type: "string" }, budget: { type: "string" } },
});
const count = Number(values.messages ?? 200);
const size = Number(values.mb ?? 10) * 1_000_000;

/** The object behind `/bench/<id>`: that message, padded with an ignored field to `size`. */
function object(id: string): string {
  const body = msg(id);
  return `${body.slice(0, -1)},"padding":"${"x".repeat(size - body.length - 14)}"}`;
}

const s3 = serveLocal((request) => {
  const id = new URL(request.url).pathname.split("/").pop()!;
  const text = object(id);
  return new Response(text, { headers: { "content-length": String(text.length) } });
});
const lab = await startLabEnv({ visibility: 60 });
const enrich = startEnrichFake();
const validator = startValidatorFake();
try {
  for (let i = 0; i < count; i += 10) {
    const entries = Array.from({ length: Math.min(10, count - i) }, (_, j) => ({
      Id: String(j),
      MessageBody: pointerBody("bench", `bench/p-${i + j}`),
      MessageAttributes: { ExtendedPayloadSize: { DataType: "Number", StringValue: String(size) } },
    }));
    await lab.admin.call("SendMessageBatch", { QueueUrl: lab.queueUrl, Entries: entries });
  }
  const started = Date.now();
  const worker = spawnWorker(lab.env({ enrich: enrich.url, validator: validator.url }, {
    AWS_ENDPOINT_URL_S3: s3.url,
    MAX_IN_FLIGHT: "500",
    SQS_VISIBILITY_TIMEOUT_SECONDS: "60",
    LOG_LEVEL: "info",
    ...(values.budget ? { S3_PAYLOAD_BUDGET_BYTES: values.budget } : {}),
  }));
  let peakKb = 0;
  try {
    await waitFor(
      async () => {
        peakKb = Math.max(peakKb, await readPeakRssKb(worker.pid));
        return validator.accepted.size >= count;
      },
      "every message accepted",
      600_000,
    );
    peakKb = Math.max(peakKb, await readPeakRssKb(worker.pid));
  } finally {
    await worker.close();
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `${count} messages × ${size / 1e6} MB objects, MAX_IN_FLIGHT 500: ` +
      `${validator.accepted.size} accepted in ${seconds.toFixed(1)} s, worker peak RSS ` +
      `${(peakKb / 1024).toFixed(1)} MB`,
  );
} finally {
  await enrich.close();
  await validator.close();
  await lab.close();
  await s3.close();
}
