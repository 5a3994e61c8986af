/**
 * Configuration from environment variables (contract section 4). One table,
 * `CONFIG_VARS`, drives parsing, `sluice --help` and the env file example, so a
 * variable is added in one place.
 */
import { z } from "zod";
import { ConfigError } from "../lib/errors.ts";
import type { UnknownUserPolicy } from "../domain/outcome.ts";
import { regionFromQueueUrl } from "../adapters/sqs_client.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";

/** The worker's settings, parsed and checked. */
export interface Config {
  region: string;
  queueUrl: string;
  /** `AWS_ENDPOINT_URL_SQS` or `AWS_ENDPOINT_URL`; undefined means the queue URL's origin. */
  endpoint: string | undefined;
  receiveWaitSeconds: number;
  maxBatch: number;
  visibilityTimeoutSeconds: number;
  /** Explicit DLQ; undefined means "discover from RedrivePolicy". */
  dlqQueueUrl: string | undefined;
  enrichUrl: string;
  /** Always ends in `/ingest`. */
  validatorUrl: string;
  deleteOn4xx: boolean;
  deleteOn5xx: boolean;
  unknownUserPolicy: UnknownUserPolicy;
  maxInFlight: number;
  enrichConcurrency: number;
  validatorConcurrency: number;
  enrichBatchMax: number;
  enrichBatchWaitMs: number;
  dedupTtlSeconds: number;
  cacheTtlSeconds: number;
  cacheMaxEntries: number;
  httpTimeoutMs: number;
  httpHost: string;
  httpPort: number;
  shutdownGraceSeconds: number;
  logLevel: LogLevel;
  logFormat: "json" | "pretty";
  /** IDEMPOTENCY_TABLE: the shared dedupe record across workers; undefined = in-process only. */
  idempotencyTable: string | undefined;
  /** `AWS_ENDPOINT_URL_DYNAMODB` or `AWS_ENDPOINT_URL`; undefined = the region's endpoint. */
  dynamodbEndpoint: string | undefined;
}

/** One environment variable: its default (as text) and what it accepts. */
export interface ConfigVar {
  name: string;
  default: string | undefined;
  help: string;
  /** Shown after "expected" in an error line. */
  expected: string;
  schema: z.ZodType<unknown>;
  secret?: boolean;
}

const int = (min: number, max: number) =>
  z.string().trim().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(max));
const url = z.string().trim().refine((value) => {
  try {
    const parsed = new URL(value);
    return parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {
    return false;
  }
});
const bool = z.string().trim().toLowerCase().pipe(
  z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) =>
    v === "true" || v === "1" || v === "yes"
  ),
);
const text = z.string();
const nonEmpty = z.string().trim().min(1);

const v = (
  name: string,
  def: string | undefined,
  expected: string,
  schema: z.ZodType<unknown>,
  help: string,
  secret = false,
): ConfigVar => ({ name, default: def, expected, schema, help, secret });

/** Every variable sluice reads, in the order `--help` shows them. */
export const CONFIG_VARS: readonly ConfigVar[] = [
  v("SQS_QUEUE_URL", undefined, "an http(s) URL", url, "queue to consume (required)"),
  v(
    "AWS_REGION",
    undefined,
    "a region name",
    nonEmpty,
    "signing region; default AWS_DEFAULT_REGION, else the queue URL's region",
  ),
  v("AWS_DEFAULT_REGION", undefined, "a region name", nonEmpty, "fallback for AWS_REGION"),
  v(
    "AWS_ENDPOINT_URL_SQS",
    undefined,
    "an http(s) URL",
    url,
    "SQS endpoint override (emulators, VPC endpoints)",
  ),
  v("AWS_ENDPOINT_URL", undefined, "an http(s) URL", url, "endpoint override for all AWS services"),
  v(
    "AWS_ENDPOINT_URL_DYNAMODB",
    undefined,
    "an http(s) URL",
    url,
    "DynamoDB endpoint override (dynalite in the lab and tests)",
  ),
  v("AWS_ACCESS_KEY_ID", undefined, "a key id", text, "credentials, first in the chain", true),
  v("AWS_SECRET_ACCESS_KEY", undefined, "a secret", text, "credentials, first in the chain", true),
  v("AWS_SESSION_TOKEN", undefined, "a token", text, "session token for temporary keys", true),
  v(
    "AWS_SHARED_CREDENTIALS_FILE",
    "~/.aws/credentials",
    "a path",
    text,
    "shared credentials file, second in the chain",
  ),
  v("AWS_PROFILE", "default", "a profile name", nonEmpty, "profile in the shared credentials file"),
  v(
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "http://169.254.169.254",
    "an http(s) URL",
    url,
    "instance metadata service (IMDSv2), third in the chain",
  ),
  v("SQS_RECEIVE_WAIT_SECONDS", "20", "an integer 0-20", int(0, 20), "long-poll wait"),
  v("SQS_MAX_BATCH", "10", "an integer 1-10", int(1, 10), "messages per receive"),
  v(
    "SQS_VISIBILITY_TIMEOUT_SECONDS",
    "30",
    "an integer 1-43200",
    int(1, 43200),
    "visibility requested on receive; extended while a message is worked on",
  ),
  v(
    "DLQ_QUEUE_URL",
    undefined,
    "an http(s) URL",
    url,
    "dead-letter queue; default the queue's RedrivePolicy target",
  ),
  v("ENRICH_URL", undefined, "an http(s) URL", url, "enrichment API base URL (required)"),
  v(
    "VALIDATOR_URL",
    undefined,
    "an http(s) URL",
    url,
    "validator base URL or its /ingest URL (required)",
  ),
  v(
    "DELETE_ON_4XX",
    "false",
    "true or false",
    bool,
    "delete a message the validator rejects instead of dead-lettering it",
  ),
  v(
    "DELETE_ON_5XX",
    "false",
    "true or false",
    bool,
    "delete a message whose validator 5xx outlived the retry budget",
  ),
  v(
    "UNKNOWN_USER_POLICY",
    "submit",
    "submit, dead-letter or drop",
    z.enum(["submit", "dead-letter", "drop"]),
    "what to do when the enrichment API does not know the user",
  ),
  v(
    "MAX_IN_FLIGHT",
    "500",
    "an integer 1-100000",
    int(1, 100000),
    "messages between receive and settle",
  ),
  v(
    "ENRICH_CONCURRENCY",
    "32",
    "an integer 1-10000",
    int(1, 10000),
    "cap on concurrent enrichment requests",
  ),
  v(
    "VALIDATOR_CONCURRENCY",
    "64",
    "an integer 1-10000",
    int(1, 10000),
    "cap on concurrent validator requests",
  ),
  v("ENRICH_BATCH_MAX", "100", "an integer 1-100", int(1, 100), "ids per batch lookup (1 = off)"),
  v(
    "ENRICH_BATCH_WAIT_MS",
    "5",
    "an integer 0-1000",
    int(0, 1000),
    "how long a batch lookup waits to fill",
  ),
  v(
    "DEDUP_TTL_SECONDS",
    "3600",
    "an integer 0-604800",
    int(0, 604800),
    "how long an accepted message_id is remembered",
  ),
  v(
    "IDEMPOTENCY_TABLE",
    undefined,
    "a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)",
    z.string().trim().regex(/^[A-Za-z0-9_.-]{3,255}$/),
    "DynamoDB table that makes dedupe hold across workers and restarts; unset: in-process only",
  ),
  v("CACHE_TTL_SECONDS", "300", "an integer 0-86400", int(0, 86400), "profile cache TTL"),
  v(
    "CACHE_MAX_ENTRIES",
    "100000",
    "an integer 0-10000000",
    int(0, 10_000_000),
    "profile cache size",
  ),
  v(
    "HTTP_TIMEOUT_MS",
    "5000",
    "an integer 1-600000",
    int(1, 600000),
    "timeout per downstream request",
  ),
  v("HTTP_HOST", "127.0.0.1", "a host name or address", nonEmpty, "health and metrics server"),
  v("HTTP_PORT", "9400", "an integer 0-65535", int(0, 65535), "health and metrics port"),
  v(
    "SHUTDOWN_GRACE_SECONDS",
    "20",
    "an integer 0-3600",
    int(0, 3600),
    "drain time on SIGTERM",
  ),
  v(
    "LOG_LEVEL",
    "info",
    "debug, info, warn or error",
    z.string().trim().toLowerCase().pipe(z.enum(["debug", "info", "warn", "error"])),
    "log threshold",
  ),
  v(
    "LOG_FORMAT",
    "json",
    "json or pretty",
    z.string().trim().toLowerCase().pipe(z.enum(["json", "pretty"])),
    "json for journald, pretty for a terminal",
  ),
];

const BY_NAME = new Map(CONFIG_VARS.map((item) => [item.name, item]));

function read<T>(env: Record<string, string | undefined>, name: string): T | undefined {
  const spec = BY_NAME.get(name);
  if (!spec) throw new Error(`unknown config variable ${name}`);
  const raw = env[name];
  const value = raw === undefined || raw === "" ? spec.default : raw;
  if (value === undefined) return undefined;
  const result = spec.schema.safeParse(value);
  if (!result.success) {
    const shown = spec.secret ? "<hidden>" : JSON.stringify(value);
    throw new ConfigError(
      name,
      `Cannot parse ${name}: received ${shown}, expected ${spec.expected}`,
    );
  }
  return result.data as T;
}

function required<T>(env: Record<string, string | undefined>, name: string): T {
  const value = read<T>(env, name);
  if (value === undefined) {
    throw new ConfigError(name, `Missing ${name}: it is required (${BY_NAME.get(name)?.help})`);
  }
  return value;
}

/** The validator's ingest URL, whether given as the base or with `/ingest`. */
export function ingestUrl(base: string): string {
  const url = new URL(base);
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = path.endsWith("/ingest") ? path : `${path}/ingest`;
  return url.toString();
}

/**
 * Parses the environment into a Config. Throws ConfigError with one line that
 * names the variable, the value received and what is allowed; secrets are hidden.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const queueUrl = required<string>(env, "SQS_QUEUE_URL");
  if (new URL(queueUrl).pathname.endsWith(".fifo")) {
    throw new ConfigError(
      "SQS_QUEUE_URL",
      `Cannot use SQS_QUEUE_URL: received ${
        JSON.stringify(queueUrl)
      }, expected a standard queue (FIFO queues are not supported yet)`,
    );
  }
  const region = read<string>(env, "AWS_REGION") ?? read<string>(env, "AWS_DEFAULT_REGION") ??
    regionFromQueueUrl(queueUrl);
  if (!region) {
    throw new ConfigError(
      "AWS_REGION",
      `Missing AWS_REGION: set it (or AWS_DEFAULT_REGION); the queue URL ${
        JSON.stringify(queueUrl)
      } names no region`,
    );
  }
  // Validate the credential-chain variables early even though the chain reads them itself.
  read(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
  const config: Config = {
    region,
    queueUrl,
    endpoint: read<string>(env, "AWS_ENDPOINT_URL_SQS") ?? read<string>(env, "AWS_ENDPOINT_URL"),
    receiveWaitSeconds: required(env, "SQS_RECEIVE_WAIT_SECONDS"),
    maxBatch: required(env, "SQS_MAX_BATCH"),
    visibilityTimeoutSeconds: required(env, "SQS_VISIBILITY_TIMEOUT_SECONDS"),
    dlqQueueUrl: read<string>(env, "DLQ_QUEUE_URL"),
    enrichUrl: required<string>(env, "ENRICH_URL").replace(/\/+$/, ""),
    validatorUrl: ingestUrl(required<string>(env, "VALIDATOR_URL")),
    deleteOn4xx: required(env, "DELETE_ON_4XX"),
    deleteOn5xx: required(env, "DELETE_ON_5XX"),
    unknownUserPolicy: required(env, "UNKNOWN_USER_POLICY"),
    maxInFlight: required(env, "MAX_IN_FLIGHT"),
    enrichConcurrency: required(env, "ENRICH_CONCURRENCY"),
    validatorConcurrency: required(env, "VALIDATOR_CONCURRENCY"),
    enrichBatchMax: required(env, "ENRICH_BATCH_MAX"),
    enrichBatchWaitMs: required(env, "ENRICH_BATCH_WAIT_MS"),
    dedupTtlSeconds: required(env, "DEDUP_TTL_SECONDS"),
    cacheTtlSeconds: required(env, "CACHE_TTL_SECONDS"),
    cacheMaxEntries: required(env, "CACHE_MAX_ENTRIES"),
    httpTimeoutMs: required(env, "HTTP_TIMEOUT_MS"),
    httpHost: required(env, "HTTP_HOST"),
    httpPort: required(env, "HTTP_PORT"),
    shutdownGraceSeconds: required(env, "SHUTDOWN_GRACE_SECONDS"),
    logLevel: required(env, "LOG_LEVEL"),
    logFormat: required(env, "LOG_FORMAT"),
    idempotencyTable: read<string>(env, "IDEMPOTENCY_TABLE"),
    dynamodbEndpoint: read<string>(env, "AWS_ENDPOINT_URL_DYNAMODB") ??
      read<string>(env, "AWS_ENDPOINT_URL"),
  };
  return config;
}
