/**
 * Builds the worker's object graph from a Config and the runtime's services,
 * and runs it. The one place that constructs components; main.ts, the lab and
 * tests all start the worker through `startWorker`.
 */
import type { Hono } from "hono";
import { adaptiveSemaphore } from "../lib/adaptive_limit.ts";
import { credentialChain } from "../adapters/aws_credentials.ts";
import { type BreakerState, CircuitBreaker } from "../lib/circuit_breaker.ts";
import type { Config } from "./config.ts";
import { EnrichClient } from "../adapters/enrich_client.ts";
import { isRetriable } from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/logger.ts";
import { Pipeline } from "../flow/pipeline.ts";
import { ProfileSource } from "../flow/profile_source.ts";
import { retry, sleep } from "../lib/retry.ts";
import { createServer } from "./server.ts";
import { Settler } from "../flow/settle.ts";
import { createSluiceMetrics, type SluiceMetrics } from "../domain/sluice_metrics.ts";
import { SqsClient } from "../adapters/sqs_client.ts";
import { ValidatorClient } from "../adapters/validator_client.ts";
import { VisibilityHeartbeat } from "../flow/visibility_heartbeat.ts";
import { createIdempotencyGate, workerIdOf } from "./idempotency_wiring.ts";

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

export interface Redrive {
  dlqUrl: string | undefined;
  maxReceiveCount: number | undefined;
}

/** Reads the queue's RedrivePolicy (contract section 5); retries while SQS is unreachable. */
export async function discoverRedrive(
  sqs: SqsClient,
  config: Config,
  logger: Logger,
  signal: AbortSignal,
  /** Attempts while SQS is unreachable; the worker waits for it, a command does not. */
  attempts = Number.POSITIVE_INFINITY,
): Promise<Redrive> {
  let attributes: Record<string, string>;
  try {
    attributes = await retry(
      () => sqs.getQueueAttributes(config.queueUrl, ["RedrivePolicy"], signal),
      {
        maxAttempts: attempts,
        baseDelayMs: 500,
        maxDelayMs: 10_000,
        signal,
        onRetry: (error, attempt) => {
          if (attempt === 1 || attempt % 10 === 0) {
            logger.warn("cannot read the queue's attributes yet; retrying", { error, attempt });
          }
        },
      },
    );
  } catch (error) {
    if (signal.aborted) throw error;
    logger.warn(
      "cannot read the queue's RedrivePolicy; running without a DLQ unless DLQ_QUEUE_URL is set",
      {
        error,
      },
    );
    return { dlqUrl: config.dlqQueueUrl, maxReceiveCount: undefined };
  }
  const raw = attributes.RedrivePolicy;
  if (!raw) {
    if (!config.dlqQueueUrl) {
      logger.warn(
        "the queue has no RedrivePolicy and DLQ_QUEUE_URL is not set; poison messages will be released, not dead-lettered",
      );
    }
    return { dlqUrl: config.dlqQueueUrl, maxReceiveCount: undefined };
  }
  let policy: { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
  try {
    policy = JSON.parse(raw);
  } catch {
    logger.warn("the queue's RedrivePolicy is not JSON", { redrive_policy: raw });
    return { dlqUrl: config.dlqQueueUrl, maxReceiveCount: undefined };
  }
  const maxReceiveCount = Number(policy.maxReceiveCount) || undefined;
  if (config.dlqQueueUrl) return { dlqUrl: config.dlqQueueUrl, maxReceiveCount };
  // arn:aws:sqs:REGION:ACCOUNT:NAME
  const parts = String(policy.deadLetterTargetArn ?? "").split(":");
  const [account, name] = [parts[4], parts[5]];
  if (!name) {
    logger.warn("the RedrivePolicy names no DLQ", { redrive_policy: raw });
    return { dlqUrl: undefined, maxReceiveCount };
  }
  try {
    const dlqUrl = await retry(() => sqs.getQueueUrl(name, account || undefined, signal), {
      maxAttempts: 10,
      signal,
    });
    return { dlqUrl, maxReceiveCount };
  } catch (error) {
    if (signal.aborted) throw error;
    logger.warn("cannot find the DLQ's URL; running without a DLQ", { error, dlq: name });
    return { dlqUrl: undefined, maxReceiveCount };
  }
}

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
    // Readiness means SQS answers us: credential and permission errors count too.
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

  const health = () => {
    const notReady: string[] = [];
    if (starting) notReady.push("starting: reading the queue's attributes");
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

  const pollQueueDepth = async (redrive: Redrive) => {
    const queues: Array<[string, string]> = [["main", config.queueUrl]];
    if (redrive.dlqUrl) queues.push(["dlq", redrive.dlqUrl]);
    while (!background.signal.aborted) {
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
          logger.debug("queue depth poll failed", { error, queue: label });
        }
      }
      await sleep(30_000, background.signal).catch(() => {});
    }
  };

  const run = async () => {
    let redrive: Redrive;
    try {
      redrive = await discoverRedrive(sqs, config, logger, intake.signal);
    } catch {
      return; // stopped before it started
    } finally {
      starting = false;
    }
    logger.info("sluice started", {
      queue: config.queueUrl,
      dlq: redrive.dlqUrl ?? null,
      max_receive_count: redrive.maxReceiveCount ?? null,
      max_in_flight: config.maxInFlight,
    });
    settler = new Settler({
      sqs,
      queueUrl: config.queueUrl,
      dlqUrl: redrive.dlqUrl,
      now,
      random,
      onStale: (kind, code) => {
        metrics.staleReceipts.inc({ kind });
        logger.warn("stale receipt handle", { kind, code });
      },
    });
    const idempotency = createIdempotencyGate(config, deps, metrics, logger, workerIdOf(random));
    const heartbeat = new VisibilityHeartbeat({
      // Retried only while it can still help: about the heartbeat's lead time.
      extend: (handle, seconds) =>
        settler!.changeVisibility(handle, seconds, config.visibilityTimeoutSeconds * 500),
      visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
      now,
      onExtend: () => metrics.visibilityExtensions.inc(),
      alsoExtend: (handle, seconds) => idempotency?.extend(handle, seconds),
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
      maxReceiveCount: redrive.maxReceiveCount,
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
      idempotency,
      metrics,
      logger,
      now,
      random,
    });
    heartbeat.run(background.signal);
    pollQueueDepth(redrive);
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
          await within(pipeline.drain(), Math.max(10_000, config.httpTimeoutMs + 1000));
        }
      }
      if (settler) await within(settler.flush(), 10_000);
      background.abort();
      logger.info("stopped");
    })();
    return stopping;
  };

  const done = running.then(() => stopping ?? Promise.resolve());
  return { app, logger, metrics, done, stop };
}
