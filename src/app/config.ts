/**
 * Configuration from environment variables (README, Configuration). One table,
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
/** Spellings other tools use for the same level. */
const LOG_LEVEL_ALIASES: Record<string, string> = {
  warning: "warn",
  information: "info",
  err: "error",
};
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
    "AWS_ALLOW_HTTP_ENDPOINT",
    "false",
    "true or false",
    bool,
    "allow a plain http:// AWS endpoint (SQS, DynamoDB) that is not loopback (credentials would travel in clear)",
  ),
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
    "how long an accepted message_id is remembered (see sluice_dedupe_window_seconds)",
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
    z.string().trim().toLowerCase().transform((level) => LOG_LEVEL_ALIASES[level] ?? level).pipe(
      z.enum(["debug", "info", "warn", "error"]),
    ),
    "log threshold (warning, information and err are accepted too)",
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

function queueChecks(queueUrl: string | undefined, sink: Sink): void {
  if (queueUrl && new URL(queueUrl).pathname.endsWith(".fifo")) {
    report(
      sink,
      "SQS_QUEUE_URL",
      `Cannot use SQS_QUEUE_URL: received ${
        JSON.stringify(queueUrl)
      }, expected a standard queue (FIFO queues are not supported yet)`,
    );
  }
}

function buildConfig(env: Record<string, string | undefined>, sink: Sink): Config {
  const queueUrl = required<string>(env, "SQS_QUEUE_URL", sink);
  queueChecks(queueUrl, sink);
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
  // Validate the credential-chain variables early even though the chain reads them itself.
  read(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT", sink);
  refuseClearTextEndpoints(env, sink);
  const r = <T>(name: string) => required<T>(env, name, sink);
  const config: Config = {
    region: region ?? "",
    queueUrl,
    endpoint: read<string>(env, "AWS_ENDPOINT_URL_SQS", sink) ??
      read<string>(env, "AWS_ENDPOINT_URL", sink),
    receiveWaitSeconds: r("SQS_RECEIVE_WAIT_SECONDS"),
    maxBatch: r("SQS_MAX_BATCH"),
    visibilityTimeoutSeconds: r("SQS_VISIBILITY_TIMEOUT_SECONDS"),
    dlqQueueUrl: read<string>(env, "DLQ_QUEUE_URL", sink),
    enrichUrl: r<string | undefined>("ENRICH_URL")?.replace(/\/+$/, "") as string,
    validatorUrl: ingestOrUndefined(r<string | undefined>("VALIDATOR_URL")) as string,
    deleteOn4xx: r("DELETE_ON_4XX"),
    deleteOn5xx: r("DELETE_ON_5XX"),
    unknownUserPolicy: r("UNKNOWN_USER_POLICY"),
    maxInFlight: r("MAX_IN_FLIGHT"),
    enrichConcurrency: r("ENRICH_CONCURRENCY"),
    validatorConcurrency: r("VALIDATOR_CONCURRENCY"),
    enrichBatchMax: r("ENRICH_BATCH_MAX"),
    enrichBatchWaitMs: r("ENRICH_BATCH_WAIT_MS"),
    dedupTtlSeconds: r("DEDUP_TTL_SECONDS"),
    cacheTtlSeconds: r("CACHE_TTL_SECONDS"),
    cacheMaxEntries: r("CACHE_MAX_ENTRIES"),
    httpTimeoutMs: r("HTTP_TIMEOUT_MS"),
    httpHost: r("HTTP_HOST"),
    httpPort: r("HTTP_PORT"),
    shutdownGraceSeconds: r("SHUTDOWN_GRACE_SECONDS"),
    logLevel: r("LOG_LEVEL"),
    logFormat: r("LOG_FORMAT"),
    idempotencyTable: read<string>(env, "IDEMPOTENCY_TABLE", sink),
    dynamodbEndpoint: read<string>(env, "AWS_ENDPOINT_URL_DYNAMODB", sink) ??
      read<string>(env, "AWS_ENDPOINT_URL", sink),
  };
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
