/** The `--help` texts: the binary's, and one per subcommand. They need no configuration. */
import { CONFIG_VARS } from "../app/config.ts";
import { DEFAULT_REDRIVE_RATE, type HelpTopic } from "./cli_args.ts";

const FILTERS = [
  "  --category NAME          only this sluice_error category (repeatable or comma-separated:",
  "                           VALIDATION, UNKNOWN_USER, REJECTED, TRANSIENT, TIMEOUT, PERMANENT;",
  "                           NONE = moved by the queue's redrive policy, without a reason)",
  "  --reason-match REGEX     only messages whose sluice_reason matches REGEX",
  "  --min-age SECONDS        only messages that have been in the DLQ at least this long",
];
const OUTPUT = [
  "  --allow-any-dlq          run on a DLQ_QUEUE_URL that is not shown to be the main queue's",
  "                           dead-letter queue (its RedrivePolicy target, or listed by",
  "                           ListDeadLetterSourceQueues); without it purge and redrive refuse",
  "                           such a queue and peek and stats warn",
  "  --output text|json       text for people (default), json for scripts",
  "  --env-file PATH          read the variables from PATH only, as systemd does",
  "                           (e.g. /etc/sluice/sluice.env; through npx write --env-file=PATH,",
  "                           as Node takes a spaced --env-file for itself)",
].join("\n");

function mainHelp(): string {
  const width = Math.max(...CONFIG_VARS.map((v) => v.name.length));
  // What each accepts beside what it means: "(default submit)" alone hides the other values.
  const rows = CONFIG_VARS.map((v) =>
    `  ${v.name.padEnd(width)}  ${v.help}; accepts ${v.expected}${
      v.default !== undefined ? `; default ${v.default}` : ""
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
    "  sluice check-config [--probe [--s3-bucket NAME]] [--env-file PATH] [--json]",
    "                              check the environment; --probe also reaches SQS,",
    "                              the enrichment API and the validator",
    "  sluice dlq stats            messages in the dead-letter queue",
    "  sluice dlq peek [N]         show up to N (default 10) dead-lettered messages",
    "  sluice dlq redrive          move dead-lettered messages back to their source queues",
    "  sluice dlq purge            delete dead-lettered messages",
    "  sluice COMMAND --help       the options of one command",
    "",
    "Environment variables:",
    ...rows,
    "",
    "Exit codes: 0 ok, 1 failure, 2 bad configuration or usage.",
  ].join("\n");
}

const TOPICS: Record<Exclude<HelpTopic, "main">, string[]> = {
  "check-config": [
    "Usage: sluice check-config [--probe [--s3-bucket NAME]] [--env-file PATH] [--json]",
    "",
    "Checks every configuration variable and names every problem at once, warns about",
    "variables that look like sluice's but are not (with the nearest known name), and",
    "prints the values the worker would use.",
    "",
    "  --probe           also check what each endpoint is: the enrichment API (GET /healthz,",
    "                    GET /v1/users/<id>), the validator (/ingest exists, no redirect),",
    "                    and SQS (GetQueueAttributes on the queue and the DLQ)",
    "  --s3-bucket NAME  with --probe: S3 payloads can be read from bucket NAME (a GetObject",
    "                    of a key that does not exist answers 404 NoSuchKey)",
    "  --env-file PATH   read the variables from PATH only, as systemd's EnvironmentFile=",
    "                    does (e.g. /etc/sluice/sluice.env; through npx write",
    "                    --env-file=PATH, as Node takes a spaced --env-file for itself)",
    "  --json            print the result as one JSON object",
    "",
    "Exit codes: 0 ok, 1 a probe failed, 2 bad configuration or usage.",
  ],
  dlq: [
    "Usage: sluice dlq stats|peek|redrive|purge [options]",
    "",
    "  stats     how many messages the dead-letter queue holds",
    "  peek      show dead-lettered messages without removing them",
    "  redrive   move dead-lettered messages back to their source queues",
    "  purge     delete dead-lettered messages",
    "",
    "The DLQ is DLQ_QUEUE_URL, else the target of the queue's RedrivePolicy.",
    "`sluice dlq VERB --help` lists a subcommand's options.",
  ],
  stats: ["Usage: sluice dlq stats [--output text|json]", "", OUTPUT],
  peek: [
    "Usage: sluice dlq peek [N] [filters] [--output text|json]",
    "",
    "Shows up to N (default 10) dead-lettered messages; they stay in the DLQ.",
    ...FILTERS,
    OUTPUT,
  ],
  redrive: [
    "Usage: sluice dlq redrive [filters] [--to QUEUE_URL] [--max N] [--rate PER_SECOND] [--dry-run]",
    "",
    "Moves matching messages from the DLQ back, each to its own source queue: the queue",
    "SQS names in DeadLetterQueueSourceArn for messages its redrive policy moved, else",
    "SQS_QUEUE_URL (the messages sluice dead-lettered). Each is sent (body and message",
    "attributes; sluice_error and sluice_reason become sluice_last_error and",
    "sluice_last_reason, plus sluice_redriven_at and the run's sluice_redrive_run) before",
    "it is deleted from the DLQ, in batches of up to 10 messages and 1 MiB. Messages that",
    "do not match stay in the DLQ.",
    "",
    "One pass: it looks at no more messages than the DLQ held when it started, and leaves",
    "alone the copies it moved that come back dead-lettered again, so it ends even while",
    "the worker keeps failing them. It prints the count; run it again for more.",
    ...FILTERS,
    "  --to QUEUE_URL           send every message to this queue instead",
    "  --max N                  move at most N messages",
    "  --rate PER_SECOND        at most this many messages a second, with jitter",
    `                           (default ${DEFAULT_REDRIVE_RATE}, so a redrive cannot flood the worker)`,
    "  --dry-run                list what would move and where; change nothing",
    OUTPUT,
    "",
    "A plain redrive of everything can also run inside SQS:",
    "  aws sqs start-message-move-task --source-arn DLQ_ARN",
  ],
  purge: [
    "Usage: sluice dlq purge [filters] [--yes] [--output text|json]",
    "",
    "Deletes dead-lettered messages: all of them (PurgeQueue), or with filters only the",
    "matching ones. Prints the DLQ and its depth, and asks for the count to confirm",
    "(--yes skips the question). Refuses a DLQ that is the main queue.",
    ...FILTERS,
    "  --yes                    do not ask",
    OUTPUT,
  ],
};

/** The help text for a topic. */
export function helpText(topic: HelpTopic): string {
  return topic === "main" ? mainHelp() : TOPICS[topic].join("\n");
}

/** The command that prints a topic's help, for the pointer after a usage error. */
export function helpCommand(topic: HelpTopic): string {
  if (topic === "main") return "sluice --help";
  if (topic === "check-config" || topic === "dlq") return `sluice ${topic} --help`;
  return `sluice dlq ${topic} --help`;
}
