/**
 * The common Node baseline for `deno task bench`: `sqs-consumer` with `@aws-sdk/client-sqs`,
 * used as its README documents. batchSize 10 (the consumer then runs handleMessage for the ten
 * messages of a receive concurrently and deletes each one after its handler returns it),
 * long polling with the library's default wait, one fetch to the enrichment API and one POST to
 * the validator per message. A handler that throws leaves its message on the queue; a poison
 * body is left for the redrive policy, as the library's README recommends.
 *
 * Configured by the worker's environment variables (SQS_QUEUE_URL, AWS_ENDPOINT_URL_SQS,
 * AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ENRICH_URL, VALIDATOR_URL).
 * Run: deno run -A bench/sqs_consumer_worker.ts. Exits 0 on SIGTERM or SIGINT.
 */
import { Consumer } from "sqs-consumer";
import { type Message, SQSClient } from "@aws-sdk/client-sqs";
import { parseBaselineInput, processBaselineMessage } from "./baseline_document.ts";

const HTTP_TIMEOUT_MS = 5000;

function requireEnv(name: string): string {
  const value = Deno.env.get(name);
  if (value === undefined || value === "") {
    console.error(`sqs_consumer_worker: ${name} is required`);
    Deno.exit(2);
  }
  return value;
}

function main(): void {
  const queueUrl = requireEnv("SQS_QUEUE_URL");
  const enrichUrl = requireEnv("ENRICH_URL");
  const validatorUrl = requireEnv("VALIDATOR_URL");
  const endpoint = Deno.env.get("AWS_ENDPOINT_URL_SQS") ?? Deno.env.get("AWS_ENDPOINT_URL");
  const region = Deno.env.get("AWS_REGION") ?? Deno.env.get("AWS_DEFAULT_REGION") ??
    /sqs\.([a-z0-9-]+)\./.exec(new URL(queueUrl).hostname)?.[1] ?? "us-east-1";
  const sessionToken = Deno.env.get("AWS_SESSION_TOKEN");

  const sqs = new SQSClient({
    region,
    // With an explicit endpoint the SDK's queue-URL middleware already stands aside; saying so
    // keeps the emulator's unresolvable queue host (sqs.<region>.localhost) out of the request.
    ...(endpoint === undefined ? {} : { endpoint, useQueueUrlAsEndpoint: false }),
    credentials: {
      accessKeyId: requireEnv("AWS_ACCESS_KEY_ID"),
      secretAccessKey: requireEnv("AWS_SECRET_ACCESS_KEY"),
      ...(sessionToken === undefined ? {} : { sessionToken }),
    },
  });

  let accepted = 0;
  let failed = 0;
  const consumer = Consumer.create({
    queueUrl,
    sqs,
    batchSize: 10,
    handleMessage: async (message: Message) => {
      const input = parseBaselineInput(message.Body ?? "");
      if (input === undefined) throw new Error("poison body");
      await processBaselineMessage(input, { enrichUrl, validatorUrl, timeoutMs: HTTP_TIMEOUT_MS });
      accepted++;
      // Returning the message is the documented way to acknowledge (delete) it.
      return message;
    },
  });
  consumer.on("error", (err) => console.error(`sqs_consumer_worker: error: ${err.message}`));
  consumer.on("processing_error", (err) => {
    failed++;
    console.error(`sqs_consumer_worker: processing_error: ${err.message}`);
  });

  const onSignal = () => {
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGINT", onSignal);
    consumer.once("stopped", () => {
      console.error(`sqs_consumer_worker: stopped (accepted ${accepted}, failed ${failed})`);
      Deno.exit(0);
    });
    consumer.stop({ abort: true });
  };
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  consumer.start();
}

if (import.meta.main) main();
