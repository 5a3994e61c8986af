/**
 * Builds the worker's object graph from a Config and the runtime's services,
 * and runs it. The one place that constructs components; main.ts, the lab and
 * tests all start the worker through `startWorker`.
 */
import type { Hono } from "hono";
import { adaptiveSemaphore } from "../lib/adaptive_limit.ts";
import { credentialChain } from "../adapters/aws_credentials.ts";
import { type BreakerState, CircuitBreaker } from "../lib/circuit_breaker.ts";
import { type Config, exposureWarning, STOP_FLUSH_SECONDS } from "./config.ts";
import { EnrichClient } from "../adapters/enrich_client.ts";
import { isRetriable, SqsError } from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/logger.ts";
import { Pipeline } from "../flow/pipeline.ts";
import { ProfileSource } from "../flow/profile_source.ts";
import { sleep } from "../lib/retry.ts";
import { describe, RedriveWatcher } from "../flow/redrive.ts";
import { createServer } from "./server.ts";
import { Settler } from "../flow/settle.ts";
import { createSluiceMetrics, type SluiceMetrics } from "../domain/sluice_metrics.ts";
import { SqsClient } from "../adapters/sqs_client.ts";
import { ValidatorClient } from "../adapters/validator_client.ts";
import { VisibilityHeartbeat } from "../flow/visibility_heartbeat.ts";

export interface WorkerDeps {
  /** The environment, for the credential chain. */
  env: Record<string, string | undefined>;
  readTextFile?: (path: string) => Promise<string>;
  homeDir?: string | undefined;
  /** Where log lines go. Default console.log. */
  write?: (line: string) => void;
  fetch?: typeof fetch;
  now?: () => number;
  random?: () => number;
}

export interface Worker {
  app: Hono;
  logger: Logger;
  metrics: SluiceMetrics;
  /** Resolves when the worker has stopped (after `stop()`). */
  done: Promise<void>;
  /**
   * Graceful stop: intake ends (aborting long polls), in-flight work gets
   * `graceMs` (default SHUTDOWN_GRACE_SECONDS) to finish, the rest is released,
   * pending deletes are flushed.
   */
  stop(graceMs?: number): Promise<void>;
}

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** Results of an SQS request that say SQS itself is unwell, not our request. */
function sqsFailed(result: string): boolean {
  return result === "network" || result === "timeout" ||
    /throttl|internal|unavailable|overloaded|5\d\d/i.test(result);
}

/** Request results about one receipt handle, not about SQS's health. */
const STALE_RESULTS = new Set(["ReceiptHandleIsInvalid", "MessageNotInflight"]);

// Moved to flow/redrive.ts; re-exported for the CLI.
export { discoverRedrive, type Redrive } from "../flow/redrive.ts";

/**
 * The SQS client for a config: credentials from the chain, calls that name no
 * queue (GetQueueUrl for the DLQ) sent where the queue lives.
 */
export function createSqsClient(
  config: Config,
  deps: WorkerDeps,
  onRequest?: (action: string, result: string, durationMs: number) => void,
): SqsClient {
  const credentials = credentialChain({
    env: deps.env,
    ...(deps.readTextFile ? { readTextFile: deps.readTextFile } : {}),
    ...(deps.homeDir ? { homeDir: deps.homeDir } : {}),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.now ? { now: deps.now } : {}),
  });
  return new SqsClient({
    region: config.region,
    endpoint: config.endpoint ?? new URL(config.queueUrl).origin,
    credentials: () => credentials.get(),
    timeoutMs: Math.max(config.httpTimeoutMs, 10_000),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(onRequest ? { onRequest } : {}),
  });
}

/** Waits for `promise` at most `ms`; true when it settled in time. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function startWorker(config: Config, deps: WorkerDeps): Worker {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const doFetch = deps.fetch ?? fetch;
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    ...(deps.write ? { write: deps.write } : {}),
    now,
  });
  const metrics = createSluiceMetrics();
  const exposed = exposureWarning(config);
  if (exposed) logger.warn(exposed, { http_host: config.httpHost, http_port: config.httpPort });

  const breaker = (name: string, minimumCalls: number) =>
    new CircuitBreaker({
      name,
      minimumCalls,
      now,
      onStateChange: (to, from) => {
        metrics.breakerState.set({ target: name }, BREAKER_VALUE[to]);
        const log = to === "open" ? logger.warn : logger.info;
        log.call(logger, "circuit breaker changed state", { target: name, from, to });
      },
    });
  const breakers = {
    enrichment: breaker("enrichment", 20),
    validator: breaker("validator", 20),
    sqs: breaker("sqs", 5),
  };
  for (const name of Object.keys(breakers)) metrics.breakerState.set({ target: name }, 0);

  let lastSqsError: string | undefined;
  const sqs = createSqsClient(config, deps, (action, result) => {
    metrics.sqsRequests.inc({ action, result });
    const failed = sqsFailed(result);
    breakers.sqs.record(!failed);
    // Readiness means SQS answers our receives: credential and permission errors count too.
    // Only receives: the queue-depth poll is optional, and a missing GetQueueAttributes
    // permission must not make /readyz flap every 30 s (the redrive read reports itself).
    if (action !== "ReceiveMessage") return;
    if (result === "ok") lastSqsError = undefined;
    else if (result !== "aborted" && !STALE_RESULTS.has(result)) {
      lastSqsError = `${action}: ${result}`;
    }
  });

  const downstream = (target: string) => (code: string, ms: number) => {
    metrics.downstreamRequests.inc({ target, code });
    metrics.downstreamDuration.observe({ target }, ms / 1000);
  };
  const limiter = (target: string, max: number) =>
    adaptiveSemaphore({
      max,
      // Start halfway: the limit finds the downstream's capacity from there in a few round trips.
      initial: Math.max(1, Math.ceil(max / 2)),
      onChange: (limit) => metrics.concurrencyLimit.set({ target }, limit),
    });
  const enrichLimiter = limiter("enrichment", config.enrichConcurrency);
  const validatorLimiter = limiter("validator", config.validatorConcurrency);
  const enrich = new EnrichClient({
    baseUrl: config.enrichUrl,
    timeoutMs: config.httpTimeoutMs,
    fetch: doFetch,
    now,
    onResponse: downstream("enrichment"),
  });
  const validator = new ValidatorClient({
    url: config.validatorUrl,
    timeoutMs: config.httpTimeoutMs,
    fetch: doFetch,
    now,
    onResponse: downstream("validator"),
  });
  const profiles = new ProfileSource({
    client: enrich,
    breaker: breakers.enrichment,
    limiter: enrichLimiter,
    cacheTtlMs: config.cacheTtlSeconds * 1000,
    cacheMaxEntries: config.cacheMaxEntries,
    batchMax: config.enrichBatchMax,
    batchWaitMs: config.enrichBatchWaitMs,
    maxConcurrentBatches: config.enrichConcurrency,
    onCache: (result) => metrics.cacheRequests.inc({ result }),
    onBatch: (size) => metrics.enrichBatchSize.observe(undefined, size),
    now,
  });

  const background = new AbortController();
  const intake = new AbortController();
  const work = new AbortController();
  let pipeline: Pipeline | undefined;
  let settler: Settler | undefined;
  let starting = true;
  const redrive = new RedriveWatcher({
    sqs,
    config,
    logger,
    random,
  });

  const health = () => {
    const notReady: string[] = [];
    if (starting) notReady.push("starting: reading the queue's attributes");
    const policy = redrive.state;
    if (!starting && !policy.known) {
      notReady.push(`redrive policy not read yet: ${policy.pending ?? "unknown"}`);
    } else if (!starting && policy.pending !== undefined) {
      notReady.push(`redrive policy read, ${policy.pending}`);
    }
    for (const b of Object.values(breakers)) {
      if (b.state === "open") {
        notReady.push(
          `${b.name} circuit breaker is open (next probe in ${
            Math.ceil(b.remainingCooldownMs() / 1000)
          } s)`,
        );
      }
    }
    if (lastSqsError) notReady.push(`last SQS request failed: ${lastSqsError}`);
    return { alive: starting || (pipeline?.alive ?? false), notReady };
  };
  const app = createServer({ registry: metrics.registry, health });

  // Optional: a failure (often AccessDenied on GetQueueAttributes) is logged, first once and
  // then at most every 10 minutes per queue and error, and never touches readiness.
  const depthWarned = new Map<string, number>();
  const pollQueueDepth = async () => {
    while (!background.signal.aborted) {
      const queues: Array<[string, string]> = [["main", config.queueUrl]];
      const dlqUrl = redrive.state.dlqUrl;
      if (dlqUrl) queues.push(["dlq", dlqUrl]);
      for (const [label, url] of queues) {
        try {
          const a = await sqs.getQueueAttributes(
            url,
            ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            background.signal,
          );
          metrics.queueMessages.set(
            { queue: label, state: "visible" },
            Number(a.ApproximateNumberOfMessages ?? 0),
          );
          metrics.queueMessages.set(
            { queue: label, state: "in_flight" },
            Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
          );
        } catch (error) {
          if (background.signal.aborted) return;
          // Keyed by the error code, not the text: a text may carry a request id.
          const key = `${label} ${error instanceof SqsError ? error.code : describe(error)}`;
          const last = depthWarned.get(key);
          if (last === undefined || now() - last >= 600_000) {
            depthWarned.set(key, now());
            logger.warn(
              "queue depth poll failed (optional: sluice_queue_messages is not updated; readiness is unaffected)",
              { error, queue: label },
            );
          } else logger.debug("queue depth poll failed", { error, queue: label });
        }
      }
      await sleep(30_000, background.signal).catch(() => {});
    }
  };

  const run = async () => {
    try {
      // One read now; after a failure it is retried in the background until it succeeds.
      // Retries stop with intake: a held message stays held through the drain either way.
      await redrive.start(intake.signal);
    } finally {
      starting = false;
    }
    if (intake.signal.aborted) return; // stopped before it started
    const policy = redrive.state;
    logger.info("sluice started", {
      queue: config.queueUrl,
      dlq: policy.dlqUrl ?? null,
      max_receive_count: policy.maxReceiveCount ?? null,
      redrive_policy: policy.known ? "known" : `not read yet: ${policy.pending}`,
      max_in_flight: config.maxInFlight,
    });
    settler = new Settler({
      sqs,
      queueUrl: config.queueUrl,
      // Read on every use (Settler keeps the options object): a DLQ found later is used.
      get dlqUrl() {
        return redrive.state.dlqUrl;
      },
      now,
      random,
      onStale: (kind, code) => {
        metrics.staleReceipts.inc({ kind });
        logger.warn("stale receipt handle", { kind, code });
      },
    });
    const heartbeat = new VisibilityHeartbeat({
      // Retried only while it can still help: about the heartbeat's lead time.
      extend: (handle, seconds) =>
        settler!.changeVisibility(handle, seconds, config.visibilityTimeoutSeconds * 500),
      visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
      now,
      onExtend: () => metrics.visibilityExtensions.inc(),
      onLost: (_handle, reason) =>
        logger.warn("could not extend a message's visibility; it may be received again", {
          reason,
        }),
    });
    pipeline = new Pipeline({
      queueUrl: config.queueUrl,
      maxBatch: config.maxBatch,
      receiveWaitSeconds: config.receiveWaitSeconds,
      visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
      maxInFlight: config.maxInFlight,
      deleteOn4xx: config.deleteOn4xx,
      deleteOn5xx: config.deleteOn5xx,
      unknownUserPolicy: config.unknownUserPolicy,
      dedupTtlSeconds: config.dedupTtlSeconds,
      redrive: () => redrive.state,
      sqs,
      settler,
      heartbeat,
      lookup: (userId) => profiles.lookup(userId),
      submit: (document) =>
        breakers.validator.run(
          () => validatorLimiter.run(() => validator.submit(document)),
          isRetriable,
        ),
      pausedFor: () => {
        for (const b of [breakers.validator, breakers.sqs]) {
          if (b.state === "open") {
            return { reason: `${b.name} circuit breaker is open`, ms: b.remainingCooldownMs() };
          }
        }
        return undefined;
      },
      metrics,
      logger,
      now,
      random,
    });
    heartbeat.run(background.signal);
    pollQueueDepth();
    await pipeline.run(intake.signal, work.signal);
  };

  const running = run();
  let stopping: Promise<void> | undefined;

  const stop = (graceMs = config.shutdownGraceSeconds * 1000): Promise<void> => {
    stopping ??= (async () => {
      logger.info("stopping: intake ended, draining in-flight work", {
        in_flight: pipeline?.inFlight ?? 0,
        grace_ms: graceMs,
      });
      intake.abort(new DOMException("shutting down", "AbortError"));
      await running;
      if (pipeline) {
        const drained = await within(pipeline.drain(), graceMs);
        if (!drained) {
          logger.warn("grace period over; releasing unfinished messages", {
            in_flight: pipeline.inFlight,
          });
          work.abort(new DOMException("shutdown grace period over", "AbortError"));
          // Submissions in flight are waited for (never abandoned): up to one request timeout.
          // The whole stop stays within worstCaseStopSeconds (config.ts), below TimeoutStopSec.
          await within(pipeline.drain(), config.httpTimeoutMs + 1000);
        }
      }
      if (settler) await within(settler.flush(), (STOP_FLUSH_SECONDS - 1) * 1000);
      background.abort();
      logger.info("stopped");
    })();
    return stopping;
  };

  const done = running.then(() => stopping ?? Promise.resolve());
  return { app, logger, metrics, done, stop };
}
