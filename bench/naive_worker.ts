/**
 * The naive baseline for `deno task bench`: receive 10 (long poll), handle the messages one by
 * one (parse, GET the profile, POST the document), delete them one by one. Correct, not
 * deliberately crippled: keep-alive fetch, the same 5 s request timeout as sluice's default.
 * It has no retries, batching, cache or concurrency; a message that fails stays on the queue and
 * comes back after its visibility timeout, and a poison body is left for the redrive policy.
 *
 * Configured by the worker's environment variables (SQS_QUEUE_URL, AWS_ENDPOINT_URL_SQS,
 * AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ENRICH_URL, VALIDATOR_URL).
 * Run: deno run -A bench/naive_worker.ts. Exits 0 on SIGTERM or SIGINT.
 */
import { AwsClient } from "aws4fetch";
import { parseBaselineInput, processBaselineMessage } from "./baseline_document.ts";

const HTTP_TIMEOUT_MS = 5000;
const WAIT_TIME_SECONDS = 20;

function requireEnv(name: string): string {
  const value = Deno.env.get(name);
  if (value === undefined || value === "") {
    console.error(`naive_worker: ${name} is required`);
    Deno.exit(2);
  }
  return value;
}

interface ReceivedMessage {
  MessageId: string;
  ReceiptHandle: string;
  Body: string;
}

async function main(): Promise<void> {
  const queueUrl = requireEnv("SQS_QUEUE_URL");
  const enrichUrl = requireEnv("ENRICH_URL");
  const validatorUrl = requireEnv("VALIDATOR_URL");
  const endpoint = Deno.env.get("AWS_ENDPOINT_URL_SQS") ?? Deno.env.get("AWS_ENDPOINT_URL") ??
    new URL(queueUrl).origin;
  const region = Deno.env.get("AWS_REGION") ?? Deno.env.get("AWS_DEFAULT_REGION") ??
    /sqs\.([a-z0-9-]+)\./.exec(new URL(queueUrl).hostname)?.[1] ?? "us-east-1";
  const sessionToken = Deno.env.get("AWS_SESSION_TOKEN");
  const aws = new AwsClient({
    accessKeyId: requireEnv("AWS_ACCESS_KEY_ID"),
    secretAccessKey: requireEnv("AWS_SECRET_ACCESS_KEY"),
    ...(sessionToken === undefined ? {} : { sessionToken }),
    service: "sqs",
    region,
  });

  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error("signal"));
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);

  async function sqs(action: string, body: Record<string, unknown>, signal?: AbortSignal) {
    const response = await aws.fetch(endpoint, {
      method: "POST",
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": `AmazonSQS.${action}`,
      },
      body: JSON.stringify({ QueueUrl: queueUrl, ...body }),
      ...(signal === undefined ? {} : { signal }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`SQS ${action}: HTTP ${response.status} ${text}`);
    return text === "" ? {} : JSON.parse(text) as Record<string, unknown>;
  }

  let accepted = 0;
  let failed = 0;
  while (!stop.signal.aborted) {
    let messages: ReceivedMessage[];
    try {
      const out = await sqs("ReceiveMessage", {
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: WAIT_TIME_SECONDS,
      }, stop.signal);
      messages = (out.Messages as ReceivedMessage[] | undefined) ?? [];
    } catch (err) {
      if (stop.signal.aborted) break;
      console.error(`naive_worker: receive failed: ${String(err)}`);
      // A plain pause so a broken endpoint does not spin the loop.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    for (const message of messages) {
      // Finish the message in hand on SIGTERM, leave the rest to reappear after visibility.
      if (stop.signal.aborted) break;
      const input = parseBaselineInput(message.Body);
      if (input === undefined) continue; // poison: the redrive policy moves it to the DLQ
      try {
        await processBaselineMessage(input, {
          enrichUrl,
          validatorUrl,
          timeoutMs: HTTP_TIMEOUT_MS,
        });
        await sqs("DeleteMessage", { ReceiptHandle: message.ReceiptHandle });
        accepted++;
      } catch (err) {
        failed++;
        console.error(`naive_worker: ${message.MessageId} left on the queue: ${String(err)}`);
      }
    }
  }
  console.error(`naive_worker: stopped (accepted ${accepted}, failed ${failed})`);
  Deno.removeSignalListener("SIGTERM", onSignal);
  Deno.removeSignalListener("SIGINT", onSignal);
}

if (import.meta.main) {
  await main();
  Deno.exit(0);
}
