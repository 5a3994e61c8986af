/**
 * The binary's subcommands (contract section 1): `--version`, `--help`,
 * `check-config [--probe]`, `dlq peek|stats|redrive|purge`. With no arguments
 * the caller runs the worker.
 */
import { versionLine } from "./build_info.ts";
import { type Config, CONFIG_VARS, loadConfig } from "../app/config.ts";
import { ConfigError } from "../lib/errors.ts";
import { createLogger } from "../lib/logger.ts";
import * as runtime from "./runtime.ts";
import type { SqsClient } from "../adapters/sqs_client.ts";
import { createSqsClient, discoverRedrive } from "../app/start_worker.ts";

const out = (line: string) => runtime.writeStdout(`${line}\n`);
const err = (line: string) => runtime.writeStderr(`${line}\n`);

function help(): string {
  const width = Math.max(...CONFIG_VARS.map((v) => v.name.length));
  const rows = CONFIG_VARS.map((v) =>
    `  ${v.name.padEnd(width)}  ${v.help}${
      v.default !== undefined ? ` (default ${v.default})` : ""
    }`
  );
  return [
    "sluice: reads an SQS queue, enriches each message, submits it to the validator,",
    "and deletes a message only when its outcome is final.",
    "",
    "Usage:",
    "  sluice                      run the worker (configured by environment variables)",
    "  sluice --version            version and git commit",
    "  sluice --help               this text",
    "  sluice check-config [--probe]   validate the environment; --probe also reaches",
    "                              SQS, the enrichment API and the validator",
    "  sluice dlq stats            messages in the dead-letter queue",
    "  sluice dlq peek [N]         show up to N (default 10) dead-lettered messages",
    "  sluice dlq redrive [N]      move up to N (default all) messages back to the queue",
    "  sluice dlq purge --yes      delete every message in the dead-letter queue",
    "",
    "Environment variables:",
    ...rows,
    "",
    "Exit codes: 0 ok, 1 failure, 2 bad configuration or usage.",
  ].join("\n");
}

function clientFor(config: Config, env: Record<string, string | undefined>): SqsClient {
  return createSqsClient(config, {
    env,
    readTextFile: runtime.readTextFile,
    homeDir: runtime.homeDir(),
  });
}

async function probe(config: Config, env: Record<string, string | undefined>): Promise<string[]> {
  const problems: string[] = [];
  const sqs = clientFor(config, env);
  try {
    await sqs.getQueueAttributes(config.queueUrl, ["ApproximateNumberOfMessages"]);
    out(`ok   SQS: ${config.queueUrl}`);
  } catch (error) {
    problems.push(`SQS: ${(error as Error).message}`);
  }
  const reach = async (name: string, url: string, method: string) => {
    try {
      const response = await fetch(url, {
        method,
        signal: AbortSignal.timeout(config.httpTimeoutMs),
      });
      await response.body?.cancel();
      if (response.status >= 500) problems.push(`${name}: ${url} answered HTTP ${response.status}`);
      else out(`ok   ${name}: ${url} (HTTP ${response.status})`);
    } catch (error) {
      problems.push(`${name}: cannot reach ${url}: ${(error as Error).message}`);
    }
  };
  await reach("enrichment API", `${config.enrichUrl}/healthz`, "GET");
  // Any answer but a 5xx shows the validator is there; an empty GET submits nothing.
  await reach("validator", config.validatorUrl, "GET");
  return problems;
}

async function dlq(
  config: Config,
  env: Record<string, string | undefined>,
  argv: string[],
): Promise<number> {
  const sqs = clientFor(config, env);
  const logger = createLogger({ level: "warn", write: err });
  const controller = new AbortController();
  // A command must fail, not wait forever, when SQS cannot be reached.
  const redrive = await discoverRedrive(sqs, config, logger, controller.signal, 4);
  const dlqUrl = redrive.dlqUrl;
  if (!dlqUrl) {
    err("sluice: no dead-letter queue: set DLQ_QUEUE_URL or give the queue a RedrivePolicy");
    return 2;
  }
  const [verb, arg] = argv;
  const limit = arg && /^\d+$/.test(arg) ? Number(arg) : undefined;
  switch (verb) {
    case "stats": {
      const a = await sqs.getQueueAttributes(dlqUrl, [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
      ]);
      out(`dlq ${dlqUrl}`);
      out(`visible ${a.ApproximateNumberOfMessages ?? "?"}`);
      out(`in_flight ${a.ApproximateNumberOfMessagesNotVisible ?? "?"}`);
      out(`max_receive_count ${redrive.maxReceiveCount ?? "none"}`);
      return 0;
    }
    case "peek": {
      const wanted = limit ?? 10;
      let shown = 0;
      // Visibility 0 hands the same messages back: stop at the first repeat.
      const seen = new Set<string>();
      while (shown < wanted) {
        // Visibility 0: peeking must not hide the messages from anyone.
        const batch = await sqs.receiveMessage({
          queueUrl: dlqUrl,
          maxNumberOfMessages: Math.min(10, wanted - shown),
          waitTimeSeconds: 0,
          visibilityTimeout: 0,
        });
        const fresh = batch.filter((m) => !seen.has(m.messageId));
        if (fresh.length === 0) break;
        for (const m of fresh) {
          seen.add(m.messageId);
          out(JSON.stringify({
            sqs_message_id: m.messageId,
            sluice_error: m.messageAttributes.sluice_error?.StringValue ?? null,
            sluice_reason: m.messageAttributes.sluice_reason?.StringValue ?? null,
            receive_count: m.attributes.ApproximateReceiveCount ?? null,
            body: m.body.length > 500 ? `${m.body.slice(0, 500)}…` : m.body,
          }));
        }
        shown += fresh.length;
      }
      if (shown === 0) out("the dead-letter queue is empty");
      return 0;
    }
    case "redrive": {
      let moved = 0;
      // At most what is there now: a worker dead-lettering meanwhile must not keep this going.
      const depth = Number(
        (await sqs.getQueueAttributes(dlqUrl, ["ApproximateNumberOfMessages"]))
          .ApproximateNumberOfMessages ?? 0,
      );
      const target = Math.min(limit ?? depth, depth);
      while (moved < target) {
        const batch = await sqs.receiveMessage({
          queueUrl: dlqUrl,
          maxNumberOfMessages: Math.min(10, target - moved),
          waitTimeSeconds: 1,
          visibilityTimeout: 60,
        });
        if (batch.length === 0) break;
        for (const m of batch) {
          await sqs.sendMessage(config.queueUrl, m.body);
          const deleted = await sqs.deleteMessageBatch(dlqUrl, [
            { id: "0", receiptHandle: m.receiptHandle },
          ]);
          if (deleted.failed.length > 0) {
            err(
              `sluice: sent ${m.messageId} back but could not delete it from the DLQ: ${
                deleted.failed[0]?.code
              }; it is now in both queues`,
            );
            return 1;
          }
          moved++;
        }
      }
      out(`moved ${moved} message(s) from ${dlqUrl} to ${config.queueUrl}`);
      return 0;
    }
    case "purge":
      if (!argv.includes("--yes")) {
        err("sluice: dlq purge deletes every dead-lettered message; add --yes to confirm");
        return 2;
      }
      await sqs.purgeQueue(dlqUrl);
      out(`purged ${dlqUrl}`);
      return 0;
    default:
      err(
        `sluice: unknown dlq command ${
          JSON.stringify(verb ?? "")
        }: use stats, peek, redrive or purge`,
      );
      return 2;
  }
}

/**
 * The Config, or undefined after printing the one-line reason for a bad value
 * (the caller exits 2). Errors other than ConfigError propagate.
 */
export function loadConfigOrReport(env: Record<string, string | undefined>): Config | undefined {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      err(`sluice: ${error.message}`);
      return undefined;
    }
    throw error;
  }
}

/**
 * Runs a subcommand and returns its exit code, or undefined when there is
 * none and the worker should start.
 */
export async function runCli(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  if (command === undefined) return undefined;
  if (command === "--version" || command === "-V" || command === "version") {
    out(versionLine());
    return 0;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    out(help());
    return 0;
  }
  if (command !== "check-config" && command !== "dlq") {
    err(`sluice: unknown command ${JSON.stringify(command)}; see sluice --help`);
    return 2;
  }
  const env = runtime.env();
  const config = loadConfigOrReport(env);
  if (!config) return 2;
  if (command === "dlq") return await dlq(config, env, rest);
  out("ok   configuration");
  if (!rest.includes("--probe")) return 0;
  const problems = await probe(config, env);
  for (const problem of problems) err(`FAIL ${problem}`);
  return problems.length === 0 ? 0 : 2;
}
