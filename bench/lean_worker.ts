/**
 * The lean baseline for `deno task bench`: what a careful engineer writes in an hour
 * when only speed matters. 24 long polls; per received batch one enrichment batch lookup for the
 * ids not yet in a profile cache (a Map, no TTL), the documents posted concurrently, one
 * DeleteMessageBatch. Failed lookups and submissions are retried in place after a fixed pause;
 * a poison body goes to the queue's DLQ (from its redrive policy) with the reason attributes, so
 * a run ends as soon as the queue is empty. Nothing else: no breaker, heartbeat, dedupe, metrics
 * or logging. It shares nothing with src/ (the document comes from bench/baseline_document.ts).
 *
 * Configured like the worker (SQS_QUEUE_URL, AWS_ENDPOINT_URL_SQS, AWS_REGION, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, ENRICH_URL, VALIDATOR_URL). Run: deno run -A bench/lean_worker.ts.
 * Exits 0 on SIGTERM or SIGINT once the batches in hand are done.
 */
import { AwsClient } from "aws4fetch";
import {
  type BaselineInput,
  buildBaselineDocument,
  ingestUrl,
  parseBaselineInput,
} from "./baseline_document.ts";

const POLLS = 24;
const RETRY_PAUSE_MS = 200;
const TIMEOUT_MS = 5000;
type Json = Record<string, unknown>;
type Message = { MessageId: string; ReceiptHandle: string; Body: string };

const env = (name: string) => Deno.env.get(name) ?? "";
const queueUrl = env("SQS_QUEUE_URL");
const endpoint = env("AWS_ENDPOINT_URL_SQS") || new URL(queueUrl).origin;
const enrichUrl = env("ENRICH_URL").replace(/\/+$/, "");
const ingest = ingestUrl(env("VALIDATOR_URL"));
const aws = new AwsClient({
  accessKeyId: env("AWS_ACCESS_KEY_ID"),
  secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
  service: "sqs",
  region: env("AWS_REGION") || "us-east-1",
});
const stop = new AbortController();
const cache = new Map<string, Json | null>();
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const json = { "content-type": "application/json" };

async function sqs(action: string, body: Json, signal?: AbortSignal): Promise<Json> {
  const res = await aws.fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `AmazonSQS.${action}`,
    },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`SQS ${action}: HTTP ${res.status} ${text}`);
  return text === "" ? {} : JSON.parse(text);
}

/** Fills the cache for `ids`, asking again for what failed until everything is answered. */
async function lookup(ids: string[]): Promise<void> {
  let want = [...new Set(ids)].filter((id) => !cache.has(id));
  while (want.length > 0 && !stop.signal.aborted) {
    try {
      const res = await fetch(`${enrichUrl}/v1/users:batch`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ user_ids: want }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      const body = await res.json();
      if (res.ok) {
        for (const user of body.users) cache.set(String(user.user_id), user);
        for (const id of body.missing) cache.set(String(id), null);
      }
    } catch {
      // timeout or connection error: ask again below
    }
    want = want.filter((id) => !cache.has(id));
    if (want.length > 0) await pause(RETRY_PAUSE_MS);
  }
}

/** Settles one message; true when it may be deleted. */
async function handle(message: Message, input: BaselineInput | undefined, dlqUrl: string) {
  if (input === undefined) {
    const text = (value: string) => ({ DataType: "String", StringValue: value });
    return await sqs("SendMessage", {
      QueueUrl: dlqUrl,
      MessageBody: message.Body,
      MessageAttributes: { sluice_error: text("VALIDATION"), sluice_reason: text("poison body") },
    }).then(() => true, () => false);
  }
  while (cache.has(input.user_id) && !stop.signal.aborted) {
    const res = await fetch(ingest, {
      method: "POST",
      headers: json,
      body: JSON.stringify(buildBaselineDocument(input, cache.get(input.user_id)!)),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    }).catch(() => undefined);
    await res?.body?.cancel();
    if (res?.ok) return true;
    if (res && res.status < 500 && res.status !== 429) return false; // rejected: left to the redrive
    await pause(RETRY_PAUSE_MS);
  }
  return false;
}

async function poll(dlqUrl: string): Promise<void> {
  while (!stop.signal.aborted) {
    const receive = { QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 };
    const out = await sqs("ReceiveMessage", receive, stop.signal).catch(() => undefined);
    if (out === undefined) {
      if (!stop.signal.aborted) await pause(1000);
      continue;
    }
    const messages = (out.Messages ?? []) as Message[];
    const inputs = messages.map((m) => parseBaselineInput(m.Body));
    await lookup(inputs.flatMap((input) => (input ? [input.user_id] : [])));
    const done = await Promise.all(messages.map((m, i) => handle(m, inputs[i], dlqUrl)));
    const entries = messages.filter((_, i) => done[i])
      .map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle }));
    if (entries.length > 0) {
      await sqs("DeleteMessageBatch", { QueueUrl: queueUrl, Entries: entries }).catch(() => {});
    }
  }
}

if (import.meta.main) {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => stop.abort());
  }
  const attrs = await sqs("GetQueueAttributes", {
    QueueUrl: queueUrl,
    AttributeNames: ["RedrivePolicy"],
  });
  const policy = JSON.parse(String((attrs.Attributes as Json).RedrivePolicy));
  const dlqName = String(policy.deadLetterTargetArn).split(":").pop();
  const dlqUrl = String((await sqs("GetQueueUrl", { QueueName: dlqName })).QueueUrl);
  await Promise.all(Array.from({ length: POLLS }, () => poll(dlqUrl)));
  Deno.exit(0);
}
