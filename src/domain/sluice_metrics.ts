/**
 * The metrics (README, Watch it), registered once and handed to the
 * components that count them. The server only renders the registry.
 */
import { type Counter, type Gauge, type Histogram, Registry } from "../lib/metrics.ts";
import type { Outcome } from "./outcome.ts";

/** Every `outcome` label value, so each series exists at 0 from startup. */
export const OUTCOMES: readonly Outcome[] = [
  "accepted",
  "dead_lettered",
  "released",
  "rejected_deleted",
  "dropped",
  "deleted_5xx",
  "duplicate",
  "deferred",
];
/** Downstreams with retries, a concurrency limit and request metrics. */
export const DOWNSTREAMS = ["enrichment", "validator"] as const;
/** Targets with a circuit breaker. */
export const BREAKERS = ["enrichment", "validator", "sqs", "s3"] as const;
/** The `result` label of `sluice_payload_fetches_total`. */
export const PAYLOAD_RESULTS = ["ok", "not_found", "forbidden", "too_large", "error"] as const;
/** The SQS actions a worker sends in normal work. */
const SQS_ACTIONS = [
  "ReceiveMessage",
  "DeleteMessageBatch",
  "ChangeMessageVisibilityBatch",
  "SendMessage",
  "GetQueueAttributes",
];

/**
 * The `result` label of `sluice_sqs_requests_total`: a fixed set, since the error code comes from
 * the endpoint's answer and a misbehaving one must not grow the series. The SQS codes sluice
 * tells apart (throttling, stale handles, a missing queue, credentials and signing, SQS's own
 * failures), the client's transport results, and `error` for anything else.
 */
export const SQS_RESULTS: ReadonlySet<string> = new Set([
  "ok",
  "timeout",
  "network",
  "aborted",
  "credentials",
  "redirect",
  "too_large",
  "ThrottlingException",
  "RequestThrottled",
  "Throttling",
  "KmsThrottled",
  "OverLimit",
  "ReceiptHandleIsInvalid",
  "MessageNotInflight",
  "InvalidParameterValue",
  "QueueDoesNotExist",
  "NonExistentQueue",
  "AccessDenied",
  "AccessDeniedException",
  "ExpiredToken",
  "ExpiredTokenException",
  "InvalidClientTokenId",
  "SignatureDoesNotMatch",
  "InvalidSignatureException",
  "RequestTimeTooSkewed",
  "RequestExpired",
  "InternalError",
  "InternalFailure",
  "ServiceUnavailable",
  "InvalidResponse",
  "error",
]);

/** An SQS request's result as its metric label: itself when in SQS_RESULTS, else `error`. */
export function sqsResultLabel(result: string): string {
  return SQS_RESULTS.has(result) ? result : "error";
}

/** The labels of `sluice_build_info`. */
export interface BuildLabels {
  version: string;
  commit: string;
  /** e.g. "deno 2.9.6" or "bun 1.2.3". */
  runtime: string;
}

export interface SluiceMetrics {
  registry: Registry;
  messages: Counter;
  retries: Counter;
  queueMessages: Gauge;
  messageAge: Histogram;
  messageDuration: Histogram;
  downstreamRequests: Counter;
  downstreamDuration: Histogram;
  sqsRequests: Counter;
  inFlight: Gauge;
  breakerState: Gauge;
  cacheRequests: Counter;
  enrichBatchSize: Histogram;
  staleReceipts: Counter;
  visibilityExtensions: Counter;
  concurrencyLimit: Gauge;
  buildInfo: Gauge;
  dedupeTtl: Gauge;
  dedupeWindow: Gauge;
  idempotencyRequests: Counter;
  idempotencyDuration: Histogram;
  idempotencyConflicts: Counter;
  idempotencyTakeovers: Counter;
  idempotencyFenced: Counter;
  atLeastOnce: Counter;
  fifoGroupsActive: Gauge;
  fifoGroupWait: Histogram;
  rateLimited: Counter;
  rateLimitHeld: Gauge;
  rateLimitKeys: Gauge;
  rateTableRequests: Counter;
  payloadFetches: Counter;
  payloadBytes: Histogram;
  spansDropped: Counter;
}

/** Why a message may be delivered or submitted twice (`sluice_at_least_once_total`). */
export const AT_LEAST_ONCE_CAUSES = [
  "complete_failed",
  "dlq_send_retried",
  "requeue_retried",
] as const;

/** DynamoDB actions of the idempotency table, and the results their series start with. */
export const IDEMPOTENCY_ACTIONS = ["PutItem", "GetItem", "UpdateItem", "DeleteItem"] as const;
export const IDEMPOTENCY_RESULTS = ["ok", "ConditionalCheckFailedException", "error"] as const;
/** What a lost claim turned out to be (domain/idempotency.ts ConflictDecision). */
export const IDEMPOTENCY_CONFLICTS = [
  "duplicate",
  "wait",
  "mismatch",
  "claim_again",
  "ours",
] as const;

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600];
const AGE = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 43200, 86400, 345600];
const BATCH = [1, 2, 5, 10, 20, 50, 100];
const PAYLOAD_SIZES = [1024, 16384, 262144, 1048576, 4194304, 16777216, 33554432, 134217728];

/**
 * Registers every sluice metric on a new (or the given) registry, with every
 * series whose labels are known in advance at 0, so dashboards and alerts see
 * 0 rather than "no data" before the first event.
 */
export function createSluiceMetrics(
  registry = new Registry(),
  options: { idempotencyTable?: boolean } = {},
): SluiceMetrics {
  const m = register(registry, options.idempotencyTable ?? true);
  for (const outcome of OUTCOMES) m.messages.init({ outcome });
  for (const target of DOWNSTREAMS) {
    m.retries.init({ target });
    m.concurrencyLimit.init({ target });
    m.downstreamDuration.init({ target });
  }
  for (const target of BREAKERS) m.breakerState.init({ target });
  for (const result of ["hit", "miss", "stale"]) m.cacheRequests.init({ result });
  for (const action of SQS_ACTIONS) {
    m.sqsRequests.init({ action, result: "ok" });
    m.sqsRequests.init({ action, result: "error" });
  }
  for (const kind of ["delete", "visibility"]) m.staleReceipts.init({ kind });
  for (const cause of AT_LEAST_ONCE_CAUSES) m.atLeastOnce.init({ cause });
  for (const result of PAYLOAD_RESULTS) m.payloadFetches.init({ result });
  for (const reason of ["queue_full", "export_failed"]) m.spansDropped.init({ reason });
  return m;
}

function register(registry: Registry, idempotencyTable: boolean): SluiceMetrics {
  // In this order: /metrics lists the series as they were registered.
  return {
    registry,
    ...messageMetrics(registry),
    ...componentMetrics(registry),
    ...workerMetrics(registry),
    // Without IDEMPOTENCY_TABLE they count nothing: kept off /metrics, not shown at 0.
    ...idempotencyMetrics(idempotencyTable ? registry : new Registry()),
    ...rateLimitMetrics(registry),
    ...payloadMetrics(registry),
  };
}

/** What happens to messages: outcomes, retries, queue depth, age and time in the worker. */
function messageMetrics(registry: Registry) {
  return {
    messages: registry.counter(
      "sluice_messages_total",
      "Messages by outcome (accepted, dead_lettered, released, rejected_deleted, dropped, deleted_5xx, duplicate, deferred).",
      ["outcome"],
    ),
    retries: registry.counter(
      "sluice_retries_total",
      "In-process retries by downstream.",
      ["target"],
    ),
    queueMessages: registry.gauge(
      "sluice_queue_messages",
      "Approximate messages per queue and state (visible, in_flight), polled every 30 s.",
      ["queue", "state"],
    ),
    messageAge: registry.histogram(
      "sluice_message_age_seconds",
      "Seconds from SentTimestamp to the message's final outcome.",
      [],
      AGE,
    ),
    messageDuration: registry.histogram(
      "sluice_message_duration_seconds",
      "Seconds from receive to the message's final outcome.",
      [],
      SECONDS,
    ),
  };
}

/** What the parts do: downstream and SQS requests, breakers, the profile cache. */
function componentMetrics(registry: Registry) {
  return {
    downstreamRequests: registry.counter(
      "sluice_downstream_requests_total",
      "HTTP requests to the enrichment API and the validator by status code.",
      ["target", "code"],
    ),
    downstreamDuration: registry.histogram(
      "sluice_downstream_duration_seconds",
      "Downstream request duration.",
      ["target"],
      SECONDS,
    ),
    sqsRequests: registry.counter(
      "sluice_sqs_requests_total",
      "SQS API requests by action and result.",
      ["action", "result"],
    ),
    inFlight: registry.gauge("sluice_in_flight", "Messages between receive and settle."),
    breakerState: registry.gauge(
      "sluice_breaker_state",
      "Circuit breaker state per downstream: 0 closed, 1 half-open, 2 open.",
      ["target"],
    ),
    cacheRequests: registry.counter(
      "sluice_cache_requests_total",
      "Profile cache lookups by result (hit, miss, stale).",
      ["result"],
    ),
    enrichBatchSize: registry.histogram(
      "sluice_enrich_batch_size",
      "User ids per enrichment request.",
      [],
      BATCH,
    ),
  };
}

/** What the worker itself keeps: its receipts, extensions, limits, build and dedupe window. */
function workerMetrics(registry: Registry) {
  return {
    staleReceipts: registry.counter(
      "sluice_stale_receipts_total",
      "Deletes and visibility changes SQS refused because the receipt handle was stale.",
      ["kind"],
    ),
    atLeastOnce: registry.counter(
      "sluice_at_least_once_total",
      "Times a message may be delivered or submitted twice, by cause: a COMPLETED write that failed (complete_failed), a DLQ send or re-queue retried after an answer that may have been lost (dlq_send_retried, requeue_retried).",
      ["cause"],
    ),
    visibilityExtensions: registry.counter(
      "sluice_visibility_extensions_total",
      "Visibility extensions sent by the heartbeat.",
    ),
    concurrencyLimit: registry.gauge(
      "sluice_concurrency_limit",
      "Current adaptive concurrency limit per downstream.",
      ["target"],
    ),
    buildInfo: registry.gauge(
      "sluice_build_info",
      "Always 1; the labels say which build runs (version, commit, runtime).",
      ["version", "commit", "runtime"],
    ),
    fifoGroupsActive: registry.gauge(
      "sluice_fifo_groups_active",
      "FIFO queues: message groups with messages in the worker now.",
    ),
    fifoGroupWait: registry.histogram(
      "sluice_fifo_group_wait_seconds",
      "FIFO queues: seconds a message waited behind earlier messages of its group before its work began.",
      [],
      SECONDS,
    ),
    spansDropped: registry.counter(
      "sluice_spans_dropped_total",
      "Finished spans not exported: the export queue was full, or their export failed.",
      ["reason"],
    ),
    dedupeTtl: registry.gauge(
      "sluice_dedupe_ttl_seconds",
      "The DEDUP_TTL_SECONDS setting: the dedupe window the worker promises.",
    ),
    dedupeWindow: registry.gauge(
      "sluice_dedupe_window_seconds",
      "How long an accepted message_id is really remembered: DEDUP_TTL_SECONDS, or less when the dedupe memory budget cannot hold it at the current rate.",
    ),
  };
}

/** The idempotency table's series, all at 0 from startup when a table is set. */
function idempotencyMetrics(registry: Registry) {
  const requests = registry.counter(
    "sluice_idempotency_requests_total",
    "DynamoDB requests to IDEMPOTENCY_TABLE by action and result (ok, ConditionalCheckFailedException, error).",
    ["action", "result"],
  );
  const duration = registry.histogram(
    "sluice_idempotency_duration_seconds",
    "DynamoDB request duration (every action: a labelled histogram could not start at 0).",
    [],
    SECONDS,
  );
  const conflicts = registry.counter(
    "sluice_idempotency_conflicts_total",
    "Claims that lost the race, by what the record said (duplicate, wait, mismatch, claim_again, ours).",
    ["result"],
  );
  const takeovers = registry.counter(
    "sluice_idempotency_takeovers_total",
    "Lapsed IN_PROGRESS locks of another owner taken over.",
  );
  const fenced = registry.counter(
    "sluice_idempotency_fenced_total",
    "Extensions or completions refused because another worker owns the record now.",
    ["action"],
  );
  for (const action of IDEMPOTENCY_ACTIONS) {
    for (const result of IDEMPOTENCY_RESULTS) requests.inc({ action, result }, 0);
  }
  for (const result of IDEMPOTENCY_CONFLICTS) conflicts.inc({ result }, 0);
  takeovers.inc(undefined, 0);
  for (const action of ["extend", "complete"]) fenced.inc({ action }, 0);
  return {
    idempotencyRequests: requests,
    idempotencyDuration: duration,
    idempotencyConflicts: conflicts,
    idempotencyTakeovers: takeovers,
    idempotencyFenced: fenced,
  };
}

/** RATE_LIMIT (docs/rate-limits.md): no per-key labels, so a flood of keys cannot grow the series. */
function rateLimitMetrics(registry: Registry) {
  const limited = registry.counter(
    "sluice_rate_limited_total",
    "Times a message found its key over RATE_LIMIT: it waited in memory or was deferred.",
  );
  limited.inc(undefined, 0);
  return {
    rateLimited: limited,
    rateLimitHeld: registry.gauge(
      "sluice_rate_limit_held",
      "Messages waiting in memory for their key's next RATE_LIMIT slot.",
    ),
    rateLimitKeys: registry.gauge(
      "sluice_rate_limit_keys",
      "Rate-limit keys whose window is kept in memory (idle ones are forgotten; bounded).",
    ),
    rateTableRequests: registry.counter(
      "sluice_rate_limit_table_requests_total",
      "RATE_LIMIT_TABLE requests by action and result (ok, ConditionalCheckFailedException: another worker counted first, error).",
      ["action", "result"],
    ),
  };
}

/** S3 payloads of extended-client pointers (docs/payloads.md). */
function payloadMetrics(registry: Registry) {
  return {
    payloadFetches: registry.counter(
      "sluice_payload_fetches_total",
      "S3 GetObject fetches of pointed-to message bodies by result (ok, not_found, forbidden, too_large, error).",
      ["result"],
    ),
    payloadBytes: registry.histogram(
      "sluice_payload_bytes",
      "Size of the fetched S3 payloads.",
      [],
      PAYLOAD_SIZES,
    ),
  };
}
