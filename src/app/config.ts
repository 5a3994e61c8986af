/**
 * Configuration from environment variables (README, Configuration). One table,
 * `CONFIG_VARS`, drives parsing, `sluice --help` and the env file example, so a
 * variable is added in one place.
 */
import { z } from "zod";
import { ConfigError } from "../lib/errors.ts";
import type { UnknownUserPolicy } from "../domain/outcome.ts";
import {
  parseRateKey,
  parseRateLimit,
  type RateKeySpec,
  type RateLimit,
} from "../domain/rate_limit.ts";
import { isFifoQueue, regionFromQueueUrl } from "../adapters/sqs_client.ts";
import { TRACE_VARS, type TraceConfig, traceConfigOf } from "./trace_config.ts";

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
  /** RATE_LIMIT keyed by RATE_LIMIT_KEY (docs/rate-limits.md); undefined = no limit. */
  rateLimit: (RateLimit & { key: RateKeySpec }) | undefined;
  /** RATE_LIMIT_TABLE: the fleet's shared window (docs/rate-limits.md); undefined = per worker. */
  rateLimitTable: string | undefined;
  /** SNS envelopes and S3 pointers (docs/payloads.md). */
  payloads: PayloadConfig;
  /** The OTEL_* variables: trace export and sampling. */
  trace: TraceConfig;
}

/** SNS_ENVELOPE, S3_PAYLOADS and the S3 settings. */
export interface PayloadConfig {
  sns: boolean;
  s3: boolean;
  /** `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` (path-style); undefined = virtual-hosted AWS. */
  s3Endpoint: string | undefined;
  maxBytes: number;
  deleteAccepted: boolean;
  /** Bytes of fetched objects held at once. */
  budgetBytes: number;
}

/** One environment variable: its default (as text) and what it accepts. */
export interface ConfigVar {
  name: string;
  /** As text; absent: no default. */
  default?: string;
  help: string;
  /** Shown after "expected" in an error line. */
  expected: string;
  schema: z.ZodType<unknown>;
  secret?: boolean;
}

/** What a boolean variable accepts, as its error and --help say. */
const BOOLEAN = "true or false (or yes/no, on/off, 1/0)";
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
  z.enum(["true", "false", "1", "0", "yes", "no", "on", "off"]).transform((v) =>
    v === "true" || v === "1" || v === "yes" || v === "on"
  ),
);
const text = z.string();
/** Spellings other tools use for the same level. */
const LOG_LEVEL_ALIASES: Record<string, string> = {
  warning: "warn",
  information: "info",
  err: "error",
};
const nonEmpty = z.string().trim().min(1);

/** Every variable sluice reads, in the order `--help` shows them. */
export const CONFIG_VARS: readonly ConfigVar[] = [
  {
    name: "SQS_QUEUE_URL",
    expected: "an http(s) URL",
    schema: url,
    help: "queue to consume (required)",
  },
  {
    name: "AWS_REGION",
    expected: "a region name",
    schema: nonEmpty,
    help: "signing region; default AWS_DEFAULT_REGION, else the queue URL's region",
  },
  {
    name: "AWS_DEFAULT_REGION",
    expected: "a region name",
    schema: nonEmpty,
    help: "fallback for AWS_REGION",
  },
  {
    name: "AWS_ENDPOINT_URL_SQS",
    expected: "an http(s) URL",
    schema: url,
    help: "SQS endpoint override (emulators, VPC endpoints)",
  },
  {
    name: "AWS_ENDPOINT_URL",
    expected: "an http(s) URL",
    schema: url,
    help: "endpoint override for all AWS services",
  },
  {
    name: "AWS_ALLOW_HTTP_ENDPOINT",
    default: "false",
    expected: BOOLEAN,
    schema: bool,
    help:
      "allow a plain http:// AWS endpoint (SQS, DynamoDB) that is not loopback (credentials would travel in clear)",
  },
  {
    name: "AWS_ENDPOINT_URL_DYNAMODB",
    expected: "an http(s) URL",
    schema: url,
    help: "DynamoDB endpoint override (dynalite in the lab and tests)",
  },
  {
    name: "AWS_ENDPOINT_URL_S3",
    expected: "an http(s) URL",
    schema: url,
    help: "S3 endpoint override for S3 payloads (path-style requests there)",
  },
  {
    name: "AWS_ACCESS_KEY_ID",
    expected: "a key id",
    schema: text,
    help: "credentials, first in the chain",
    secret: true,
  },
  {
    name: "AWS_SECRET_ACCESS_KEY",
    expected: "a secret",
    schema: text,
    help: "credentials, first in the chain",
    secret: true,
  },
  {
    name: "AWS_SESSION_TOKEN",
    expected: "a token",
    schema: text,
    help: "session token for temporary keys",
    secret: true,
  },
  {
    name: "AWS_SHARED_CREDENTIALS_FILE",
    default: "~/.aws/credentials",
    expected: "a path",
    schema: text,
    help: "shared credentials file, second in the chain",
  },
  {
    name: "AWS_PROFILE",
    default: "default",
    expected: "a profile name",
    schema: nonEmpty,
    help: "profile in the shared credentials file",
  },
  {
    name: "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    default: "http://169.254.169.254",
    expected: "an http(s) URL",
    schema: url,
    help: "instance metadata service (IMDSv2), third in the chain",
  },
  {
    name: "SQS_RECEIVE_WAIT_SECONDS",
    default: "20",
    expected: "an integer 0-20",
    schema: int(0, 20),
    help: "long-poll wait",
  },
  {
    name: "SQS_MAX_BATCH",
    default: "10",
    expected: "an integer 1-10",
    schema: int(1, 10),
    help: "messages per receive",
  },
  {
    name: "SQS_VISIBILITY_TIMEOUT_SECONDS",
    default: "30",
    expected: "an integer 1-43200",
    schema: int(1, 43200),
    help: "visibility requested on receive; extended while a message is worked on",
  },
  {
    name: "DLQ_QUEUE_URL",
    expected: "an http(s) URL",
    schema: url,
    help: "dead-letter queue; default the queue's RedrivePolicy target",
  },
  {
    name: "ENRICH_URL",
    expected: "an http(s) URL",
    schema: url,
    help: "enrichment API base URL (required)",
  },
  {
    name: "VALIDATOR_URL",
    expected: "an http(s) URL",
    schema: url,
    help: "validator base URL or its /ingest URL (required)",
  },
  {
    name: "DELETE_ON_4XX",
    default: "false",
    expected: BOOLEAN,
    schema: bool,
    help: "delete a message the validator rejects instead of dead-lettering it",
  },
  {
    name: "DELETE_ON_5XX",
    default: "false",
    expected: BOOLEAN,
    schema: bool,
    help: "delete a message whose validator 5xx outlived the retry budget",
  },
  {
    name: "UNKNOWN_USER_POLICY",
    default: "submit",
    expected: "submit, dead-letter or drop",
    schema: z.enum(["submit", "dead-letter", "drop"]),
    help: "what to do when the enrichment API does not know the user",
  },
  {
    name: "MAX_IN_FLIGHT",
    default: "500",
    expected: "an integer 1-100000",
    schema: int(1, 100000),
    help: "messages between receive and settle",
  },
  {
    name: "ENRICH_CONCURRENCY",
    default: "32",
    expected: "an integer 1-10000",
    schema: int(1, 10000),
    help: "cap on concurrent enrichment requests",
  },
  {
    name: "VALIDATOR_CONCURRENCY",
    default: "64",
    expected: "an integer 1-10000",
    schema: int(1, 10000),
    help: "cap on concurrent validator requests",
  },
  {
    name: "ENRICH_BATCH_MAX",
    default: "100",
    expected: "an integer 1-100",
    schema: int(1, 100),
    help: "ids per batch lookup (1 = off)",
  },
  {
    name: "ENRICH_BATCH_WAIT_MS",
    default: "5",
    expected: "an integer 0-1000",
    schema: int(0, 1000),
    help: "how long a batch lookup waits to fill",
  },
  {
    name: "DEDUP_TTL_SECONDS",
    default: "3600",
    expected: "an integer 0-604800",
    schema: int(0, 604800),
    help: "how long an accepted message_id is remembered (see sluice_dedupe_window_seconds)",
  },
  {
    name: "IDEMPOTENCY_TABLE",
    expected: "a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)",
    schema: z.string().trim().regex(/^[A-Za-z0-9_.-]{3,255}$/),
    help:
      "DynamoDB table that makes dedupe hold across workers and restarts; unset: in-process only",
  },
  {
    name: "RATE_LIMIT",
    expected: "N/DURATION: N 1-100000 per a duration up to 12h (20/1s, 600/1m, 1000/1h, 5/250ms)",
    schema: z.string().refine((v) => parseRateLimit(v) !== undefined).transform((v) =>
      parseRateLimit(v)!
    ),
    help: "at most N submissions per key in any sliding window of DURATION; unset: no limit",
  },
  {
    name: "RATE_LIMIT_TABLE",
    expected: "a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)",
    schema: z.string().trim().regex(/^[A-Za-z0-9_.-]{3,255}$/),
    help:
      "DynamoDB table (key id, a String) that makes RATE_LIMIT hold for the fleet; unset: per worker",
  },
  {
    name: "RATE_LIMIT_KEY",
    default: "user_id",
    expected: "user_id, message_group or attribute:NAME",
    schema: z.string().refine((v) => parseRateKey(v) !== undefined).transform((v) =>
      parseRateKey(v)!
    ),
    help: "what RATE_LIMIT counts per: the user, the SQS MessageGroupId, or a message attribute",
  },
  {
    name: "SNS_ENVELOPE",
    default: "auto",
    expected: "auto or off",
    schema: z.string().trim().toLowerCase().pipe(z.enum(["auto", "off"])),
    help: "auto: unwrap SNS notifications; off: every body is the input message",
  },
  {
    name: "S3_PAYLOADS",
    default: "auto",
    expected: "auto or off",
    schema: z.string().trim().toLowerCase().pipe(z.enum(["auto", "off"])),
    help: "auto: fetch SQS Extended Client S3 pointers; off: a pointer is poison",
  },
  {
    name: "S3_PAYLOAD_MAX_BYTES",
    default: "33554432",
    expected: "an integer 1-536870912",
    schema: int(1, 536_870_912),
    help: "a larger S3 payload is poison",
  },
  {
    name: "S3_PAYLOAD_DELETE",
    default: "false",
    expected: "true or false",
    schema: bool,
    help: "delete the S3 object once its message is accepted, as the extended clients do",
  },
  {
    name: "S3_PAYLOAD_BUDGET_BYTES",
    default: "33554432",
    expected: "an integer 1048576-4294967296",
    schema: int(1_048_576, 4_294_967_296),
    help: "fetched S3 payload bytes held at once; intake waits while they are spent",
  },
  {
    name: "CACHE_TTL_SECONDS",
    default: "300",
    expected: "an integer 0-86400",
    schema: int(0, 86400),
    help: "profile cache TTL",
  },
  {
    name: "CACHE_MAX_ENTRIES",
    default: "100000",
    expected: "an integer 0-10000000",
    schema: int(0, 10_000_000),
    help: "profile cache size",
  },
  {
    name: "HTTP_TIMEOUT_MS",
    default: "5000",
    expected: "an integer 1-600000",
    schema: int(1, 600000),
    help: "timeout per downstream request",
  },
  {
    name: "HTTP_HOST",
    default: "127.0.0.1",
    expected: "a host name or address",
    schema: nonEmpty,
    help: "health and metrics server",
  },
  {
    name: "HTTP_PORT",
    default: "9400",
    expected: "an integer 0-65535",
    schema: int(0, 65535),
    help: "health and metrics port",
  },
  {
    name: "SHUTDOWN_GRACE_SECONDS",
    default: "20",
    expected: "an integer 0-3600",
    schema: int(0, 3600),
    help: "drain time on SIGTERM",
  },
  {
    name: "LOG_LEVEL",
    default: "info",
    expected: "debug, info, warn or error",
    schema: z.string().trim().toLowerCase().transform((level) => LOG_LEVEL_ALIASES[level] ?? level)
      .pipe(
        z.enum(["debug", "info", "warn", "error"]),
      ),
    help: "log threshold (warning, information and err are accepted too)",
  },
  {
    name: "LOG_FORMAT",
    default: "json",
    expected: "json or pretty",
    schema: z.string().trim().toLowerCase().pipe(z.enum(["json", "pretty"])),
    help: "json for journald, pretty for a terminal",
  },
  ...TRACE_VARS,
];

const BY_NAME = new Map(CONFIG_VARS.map((item) => [item.name, item]));

/**
 * Where problems go: undefined throws the first (the worker's behaviour); an array collects every
 * one (check-config), and the value read is then undefined.
 */
type Sink = string[] | undefined;

function report(sink: Sink, name: string, message: string): undefined {
  if (!sink) throw new ConfigError(name, message);
  sink.push(message);
  return undefined;
}

function read<T>(
  env: Record<string, string | undefined>,
  name: string,
  sink?: Sink,
): T | undefined {
  const spec = BY_NAME.get(name);
  if (!spec) {
    throw new Error(
      `Cannot read config variable ${name}: received an unknown name, expected one of CONFIG_VARS`,
    );
  }
  const raw = env[name];
  const value = raw === undefined || raw === "" ? spec.default : raw;
  if (value === undefined) return undefined;
  const result = spec.schema.safeParse(value);
  const shown = spec.secret ? "<hidden>" : JSON.stringify(hideUserinfo(value));
  if (!result.success) {
    return report(sink, name, `Cannot parse ${name}: received ${shown}, expected ${spec.expected}`);
  }
  if (spec.schema === url && hasUserinfo(value)) {
    return report(
      sink,
      name,
      `Cannot use ${name}: received ${shown}, expected a URL without user:password@ (it would be printed in logs, /readyz and check-config)`,
    );
  }
  return result.data as T;
}

/** Whether a URL carries a user name or password (`https://user:pass@host`). */
function hasUserinfo(value: string): boolean {
  const parsed = URL.parse(value.trim());
  return parsed !== null && (parsed.username !== "" || parsed.password !== "");
}

/** `scheme://anything@` shown as `scheme://<hidden>@`: a refused URL never prints a password. */
function hideUserinfo(value: string): string {
  return value.replace(/^(\s*[a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1<hidden>@");
}

function required<T>(env: Record<string, string | undefined>, name: string, sink?: Sink): T {
  const raw = env[name];
  const value = read<T>(env, name, sink);
  if (value === undefined) {
    // In collect mode a bad value was reported already; only a missing one is new.
    if (sink && raw !== undefined && raw !== "") return undefined as T;
    const help = BY_NAME.get(name)?.help.replace(/ \(required\)$/, "");
    report(sink, name, `Missing ${name}: it is required (${help})`);
  }
  return value as T;
}

/** How long stop() gives the last delete flush (and the margin after a request timeout), s. */
export const STOP_FLUSH_SECONDS = 10;

/**
 * The longest a stop takes: the drain grace, then requests already on the wire
 * (at most HTTP_TIMEOUT_MS), then the delete flush. systemd's TimeoutStopSec
 * must be above it, or SIGKILL cuts the drain.
 */
export function worstCaseStopSeconds(
  config: Pick<Config, "shutdownGraceSeconds" | "httpTimeoutMs">,
): number {
  return config.shutdownGraceSeconds + Math.ceil(config.httpTimeoutMs / 1000) +
    STOP_FLUSH_SECONDS;
}

/**
 * Whether a host name (as `URL.hostname` gives it, or HTTP_HOST) is this machine's loopback:
 * `localhost`, 127.0.0.0/8 or ::1, literally. Not `*.localhost`: whether such a name resolves
 * to loopback is up to the resolver, and a DNS server may answer anything for it.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The refusal of an AWS endpoint URL that would carry signed requests and the session token in
 * clear: plain http:// off loopback. Undefined when the URL is fine.
 */
export function clearTextEndpointProblem(name: string, value: string): string | undefined {
  const parsed = URL.parse(value.trim());
  if (!parsed || parsed.protocol !== "http:" || isLoopbackHost(parsed.hostname)) return undefined;
  return `Cannot use ${name}: received ${
    JSON.stringify(value)
  }, expected an https:// URL (plain http is allowed only on loopback, or with AWS_ALLOW_HTTP_ENDPOINT=true: requests and the session token would travel in clear)`;
}

/** Same queue: the same URL, or the same account/name path in the same region. */
function sameQueue(a: string, b: string): boolean {
  const [x, y] = [new URL(a), new URL(b)];
  const path = (u: URL) => u.pathname.replace(/\/+$/, "");
  if (x.origin === y.origin && path(x) === path(y)) return true;
  const region = regionFromQueueUrl(a);
  return path(x) === path(y) && path(x) !== "" && region !== undefined &&
    region === regionFromQueueUrl(b);
}

/**
 * The endpoint overrides of every AWS service sluice calls (an S3 endpoint joins this list). The
 * queue URL is the SQS endpoint only when neither SQS override is set: with one, the queue URL's
 * host is never contacted (an emulator's `sqs.<region>.localhost` names stay usable).
 */
const AWS_ENDPOINT_VARIABLES = [
  "AWS_ENDPOINT_URL_SQS",
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_DYNAMODB",
  "AWS_ENDPOINT_URL_S3",
];

/** A plain http:// AWS endpoint off this machine would carry the signed requests in clear. */
function refuseClearTextEndpoints(env: Record<string, string | undefined>, sink?: Sink): void {
  if (read<boolean>(env, "AWS_ALLOW_HTTP_ENDPOINT", sink)) return;
  const sqsOverridden = Boolean(env.AWS_ENDPOINT_URL_SQS || env.AWS_ENDPOINT_URL);
  const names = sqsOverridden
    ? AWS_ENDPOINT_VARIABLES
    : [...AWS_ENDPOINT_VARIABLES, "SQS_QUEUE_URL"];
  for (const name of names) {
    const value = read<string>(env, name, sink);
    const problem = value === undefined ? undefined : clearTextEndpointProblem(name, value);
    if (problem) report(sink, name, problem);
  }
}

/**
 * The startup warning for an HTTP_HOST off loopback: what it exposes, and to
 * whom. Undefined on loopback.
 */
export function exposureWarning(config: Pick<Config, "httpHost" | "httpPort">): string | undefined {
  if (isLoopbackHost(config.httpHost)) return undefined;
  const host = config.httpHost.includes(":") ? `[${config.httpHost}]` : config.httpHost;
  return `HTTP_HOST=${config.httpHost} is not loopback: /metrics, /healthz and /readyz are served without authentication on ${host}:${config.httpPort} to anyone who can reach that address (restrict it with a firewall or security group)`;
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
  return buildConfig(env, undefined);
}

/**
 * Every problem in the environment at once (check-config): the Config when there is none, else
 * undefined with one line per problem, in the order of `CONFIG_VARS`.
 */
export function collectConfigProblems(
  env: Record<string, string | undefined>,
): { config: Config | undefined; problems: string[] } {
  const problems: string[] = [];
  const config = buildConfig(env, problems);
  // A variable read by two checks (an endpoint, then the config itself) is reported once.
  return { config: problems.length === 0 ? config : undefined, problems: [...new Set(problems)] };
}

function ingestOrUndefined(base: string | undefined): string | undefined {
  return base === undefined ? undefined : ingestUrl(base);
}

/** A FIFO queue's DLQ is a FIFO queue too (SQS requires it); a standard queue's is not. */
function dlqKindCheck(queueUrl: string, dlqUrl: string | undefined, sink: Sink): void {
  if (!queueUrl || dlqUrl === undefined || isFifoQueue(queueUrl) === isFifoQueue(dlqUrl)) return;
  const expected = isFifoQueue(queueUrl) ? "a FIFO queue (ending in .fifo)" : "a standard queue";
  report(
    sink,
    "DLQ_QUEUE_URL",
    `Cannot use DLQ_QUEUE_URL: received ${
      JSON.stringify(dlqUrl)
    }, expected ${expected}, as SQS_QUEUE_URL is (SQS allows no other redrive)`,
  );
}

function buildConfig(env: Record<string, string | undefined>, sink: Sink): Config {
  const queueUrl = required<string>(env, "SQS_QUEUE_URL", sink);
  const region = regionOf(env, queueUrl, sink);
  // Validate the credential-chain variables early even though the chain reads them itself.
  read(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT", sink);
  refuseClearTextEndpoints(env, sink);
  const config: Config = {
    region: region ?? "",
    queueUrl,
    endpoint: read<string>(env, "AWS_ENDPOINT_URL_SQS", sink) ??
      read<string>(env, "AWS_ENDPOINT_URL", sink),
    dlqQueueUrl: read<string>(env, "DLQ_QUEUE_URL", sink),
    idempotencyTable: read<string>(env, "IDEMPOTENCY_TABLE", sink),
    dynamodbEndpoint: read<string>(env, "AWS_ENDPOINT_URL_DYNAMODB", sink) ??
      read<string>(env, "AWS_ENDPOINT_URL", sink),
    rateLimit: rateLimitOf(env, sink),
    rateLimitTable: rateTableOf(env, sink),
    payloads: payloadsOf(env, sink),
    ...settingsOf(env, sink),
    trace: traceConfigOf((name) => read(env, name, sink)),
  };
  dlqKindCheck(queueUrl, config.dlqQueueUrl, sink);
  if (config.dlqQueueUrl !== undefined && queueUrl && sameQueue(config.dlqQueueUrl, queueUrl)) {
    report(
      sink,
      "DLQ_QUEUE_URL",
      `Cannot use DLQ_QUEUE_URL: received ${
        JSON.stringify(config.dlqQueueUrl)
      }, expected a queue other than SQS_QUEUE_URL (dead-lettering into the queue being consumed would loop forever)`,
    );
  }
  return config;
}

/** AWS_REGION, else AWS_DEFAULT_REGION, else the queue URL's; a problem when none says one. */
function regionOf(
  env: Record<string, string | undefined>,
  queueUrl: string,
  sink: Sink,
): string | undefined {
  const region = read<string>(env, "AWS_REGION", sink) ??
    read<string>(env, "AWS_DEFAULT_REGION", sink) ??
    (queueUrl ? regionFromQueueUrl(queueUrl) : undefined);
  if (!region && queueUrl) {
    report(
      sink,
      "AWS_REGION",
      `Missing AWS_REGION: set it (or AWS_DEFAULT_REGION); the queue URL ${
        JSON.stringify(queueUrl)
      } names no region`,
    );
  }
  return region;
}

/** RATE_LIMIT with its key; RATE_LIMIT_KEY is checked even while no limit is set. */
function rateLimitOf(env: Record<string, string | undefined>, sink: Sink): Config["rateLimit"] {
  const key = read<RateKeySpec>(env, "RATE_LIMIT_KEY", sink);
  const rate = read<RateLimit>(env, "RATE_LIMIT", sink);
  return rate && key && { ...rate, key };
}

/** RATE_LIMIT_TABLE, refused without RATE_LIMIT: it would share no limit. */
function rateTableOf(env: Record<string, string | undefined>, sink: Sink): string | undefined {
  const table = read<string>(env, "RATE_LIMIT_TABLE", sink);
  if (table !== undefined && !env.RATE_LIMIT?.trim()) {
    report(
      sink,
      "RATE_LIMIT_TABLE",
      `Cannot use RATE_LIMIT_TABLE: received ${
        JSON.stringify(table)
      }, expected RATE_LIMIT to be set too (the table holds the fleet's count of that limit)`,
    );
  }
  return table;
}

type Settings = Omit<
  Config,
  | "region"
  | "queueUrl"
  | "endpoint"
  | "dlqQueueUrl"
  | "idempotencyTable"
  | "dynamodbEndpoint"
  | "rateLimit"
  | "rateLimitTable"
  | "payloads"
  | "trace"
>;

/** The envelope and S3 payload settings; deleting objects that are never fetched is refused. */
function payloadsOf(env: Record<string, string | undefined>, sink: Sink): PayloadConfig {
  const s3 = required<string>(env, "S3_PAYLOADS", sink) !== "off";
  const deleteAccepted = required<boolean>(env, "S3_PAYLOAD_DELETE", sink);
  if (deleteAccepted && !s3) {
    report(
      sink,
      "S3_PAYLOAD_DELETE",
      `Cannot use S3_PAYLOAD_DELETE: received ${
        JSON.stringify(env.S3_PAYLOAD_DELETE)
      }, expected false while S3_PAYLOADS=off (no object is fetched, so none is deleted)`,
    );
  }
  return {
    sns: required<string>(env, "SNS_ENVELOPE", sink) !== "off",
    s3,
    s3Endpoint: read<string>(env, "AWS_ENDPOINT_URL_S3", sink) ??
      read<string>(env, "AWS_ENDPOINT_URL", sink),
    maxBytes: required(env, "S3_PAYLOAD_MAX_BYTES", sink),
    deleteAccepted,
    budgetBytes: required(env, "S3_PAYLOAD_BUDGET_BYTES", sink),
  };
}

/** The variables that always have a value (their default at least). */
function settingsOf(env: Record<string, string | undefined>, sink: Sink): Settings {
  const setting = <T>(name: string) => required<T>(env, name, sink);
  return {
    receiveWaitSeconds: setting("SQS_RECEIVE_WAIT_SECONDS"),
    maxBatch: setting("SQS_MAX_BATCH"),
    visibilityTimeoutSeconds: setting("SQS_VISIBILITY_TIMEOUT_SECONDS"),
    enrichUrl: setting<string | undefined>("ENRICH_URL")?.replace(/\/+$/, "") as string,
    validatorUrl: ingestOrUndefined(setting<string | undefined>("VALIDATOR_URL")) as string,
    deleteOn4xx: setting("DELETE_ON_4XX"),
    deleteOn5xx: setting("DELETE_ON_5XX"),
    unknownUserPolicy: setting("UNKNOWN_USER_POLICY"),
    maxInFlight: setting("MAX_IN_FLIGHT"),
    enrichConcurrency: setting("ENRICH_CONCURRENCY"),
    validatorConcurrency: setting("VALIDATOR_CONCURRENCY"),
    enrichBatchMax: setting("ENRICH_BATCH_MAX"),
    enrichBatchWaitMs: setting("ENRICH_BATCH_WAIT_MS"),
    dedupTtlSeconds: setting("DEDUP_TTL_SECONDS"),
    cacheTtlSeconds: setting("CACHE_TTL_SECONDS"),
    cacheMaxEntries: setting("CACHE_MAX_ENTRIES"),
    httpTimeoutMs: setting("HTTP_TIMEOUT_MS"),
    httpHost: setting("HTTP_HOST"),
    httpPort: setting("HTTP_PORT"),
    shutdownGraceSeconds: setting("SHUTDOWN_GRACE_SECONDS"),
    logLevel: setting("LOG_LEVEL"),
    logFormat: setting("LOG_FORMAT"),
  };
}
