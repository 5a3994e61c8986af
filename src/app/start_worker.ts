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
import { describeRedirect, RedirectWatch } from "../adapters/http_call.ts";
import { isRetriable, SqsError } from "../lib/errors.ts";
import { createLogger, type Logger } from "../lib/logger.ts";
import { Pipeline } from "../flow/pipeline.ts";
import { ProfileSource } from "../flow/profile_source.ts";
import { sleep } from "../lib/retry.ts";
import { describe, RedriveWatcher } from "../flow/redrive.ts";
import { createServer } from "./server.ts";
import { Settler } from "../flow/settle.ts";
import {
  type BuildLabels,
  createSluiceMetrics,
  type SluiceMetrics,
} from "../domain/sluice_metrics.ts";
import { limitRepeats, RepeatLimiter } from "../lib/repeat_limiter.ts";
import { StateLog } from "./state_log.ts";
import { SummaryLog } from "./summary_log.ts";
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
  /** Monotonic clock, ms, for time since receive, holds and retry budgets. Default performance.now. */
  monotonic?: () => number;
  random?: () => number;
  /** The labels of `sluice_build_info` (main.ts passes the build stamp). Default "unknown". */
  build?: BuildLabels;
  /** Interval of the summary log line, ms. Default 30000. */
  summaryIntervalMs?: number;
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
  /**
   * Ends the grace now (a second stop request): requests on the wire are abandoned,
   * every unfinished message is released (or re-queued on its last allowed receive),
   * deletes are flushed. Resolves when the worker has stopped.
   */
  force(): Promise<void>;
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

/** Waits for `promise` at most `ms` (less if `signal` aborts); true when it settled in time. */
async function within(
  promise: Promise<unknown>,
  ms: number,
  signal?: AbortSignal,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
        onAbort = () => resolve(false);
        if (signal?.aborted) onAbort();
        else signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

export function startWorker(config: Config, deps: WorkerDeps): Worker {
  const now = deps.now ?? Date.now;
  const monotonic = deps.monotonic ?? (() => performance.now());
  const random = deps.random ?? Math.random;
  const doFetch = deps.fetch ?? fetch;
  // Repeated identical warnings: the first, then one a minute with a count.
  const repeats = new RepeatLimiter({ now });
  const logger = limitRepeats(
    createLogger({
      level: config.logLevel,
      format: config.logFormat,
      ...(deps.write ? { write: deps.write } : {}),
      now,
    }),
    repeats,
  );
  const metrics = createSluiceMetrics();
  const build = deps.build ?? { version: "unknown", commit: "unknown", runtime: "unknown" };
  metrics.buildInfo.set({ ...build }, 1);
  metrics.dedupeTtl.set(undefined, config.dedupTtlSeconds);
  const exposed = exposureWarning(config);
  if (exposed) logger.warn(exposed, { http_host: config.httpHost, http_port: config.httpPort });

  const sqsUrl = config.endpoint ?? new URL(config.queueUrl).origin;
  const states = new StateLog({
    logger,
    repeats,
    urls: { enrichment: config.enrichUrl, validator: config.validatorUrl, sqs: sqsUrl },
  });
  const breaker = (name: string, minimumCalls: number) => {
    const b: CircuitBreaker = new CircuitBreaker({
      name,
      minimumCalls,
      now,
      onStateChange: (to, from) => {
        metrics.breakerState.set({ target: name }, BREAKER_VALUE[to]);
        states.breaker(name, to, from, b.lastFailure?.error);
        noteReadiness();
      },
    });
    return b;
  };
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
    breakers.sqs.record(!failed, failed ? `${action}: ${result}` : undefined);
    // Readiness means SQS answers our receives: credential and permission errors count too.
    // Only receives: the queue-depth poll is optional, and a missing GetQueueAttributes
    // permission must not make /readyz flap every 30 s (the redrive read reports itself).
    if (action !== "ReceiveMessage") return;
    const before = lastSqsError;
    if (result === "ok") lastSqsError = undefined;
    else if (result !== "aborted" && !STALE_RESULTS.has(result)) {
      lastSqsError = `${action}: ${result}`;
    }
    if ((before === undefined) !== (lastSqsError === undefined)) noteReadiness();
  });

  // A redirect is never followed: logged once per Location, shown on /readyz until it stops.
  const redirectVariable: Record<string, string> = {
    enrichment: "ENRICH_URL",
    validator: "VALIDATOR_URL",
  };
  const redirects = new RedirectWatch((error) =>
    logger.warn("downstream answered with a redirect; redirects are never followed", {
      target: error.target,
      status: error.status,
      location: error.location,
      problem: describeRedirect(redirectVariable[error.target] ?? error.target, error),
    })
  );
  const downstream = (target: string) => (code: string, ms: number) => {
    redirects.answered(target, code);
    metrics.downstreamRequests.inc({ target, code });
    metrics.downstreamDuration.observe({ target }, ms / 1000);
  };
  const limiter = (target: string, max: number) => {
    const semaphore = adaptiveSemaphore({
      max,
      // Start halfway: the limit finds the downstream's capacity from there in a few round trips.
      initial: Math.max(1, Math.ceil(max / 2)),
      onChange: (limit) => metrics.concurrencyLimit.set({ target }, limit),
    });
    metrics.concurrencyLimit.set({ target }, semaphore.limit);
    return semaphore;
  };
  const enrichLimiter = limiter("enrichment", config.enrichConcurrency);
  const validatorLimiter = limiter("validator", config.validatorConcurrency);
  const enrich = new EnrichClient({
    baseUrl: config.enrichUrl,
    timeoutMs: config.httpTimeoutMs,
    fetch: doFetch,
    now,
    onResponse: downstream("enrichment"),
    onRedirect: (error) => redirects.redirected(error),
  });
  const validator = new ValidatorClient({
    url: config.validatorUrl,
    timeoutMs: config.httpTimeoutMs,
    fetch: doFetch,
    now,
    onResponse: downstream("validator"),
    onRedirect: (error) => redirects.redirected(error),
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
  // Aborts when the grace ends: nothing new starts after it (no queued submission, no retry).
  const work = new AbortController();
  // Aborts on a forced stop only: requests already on the wire are abandoned too.
  const forced = new AbortController();
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
    for (const error of redirects.current()) {
      notReady.push(describeRedirect(redirectVariable[error.target] ?? error.target, error));
    }
    if (lastSqsError) notReady.push(`last SQS request failed: ${lastSqsError}`);
    return { alive: starting || (pipeline?.alive ?? false), notReady };
  };
  const app = createServer({ registry: metrics.registry, health });

  const noteReadiness = () => {
    if (starting) return;
    const { alive, notReady } = health();
    states.readiness(alive && notReady.length === 0, notReady);
  };

  const summary = new SummaryLog({
    logger,
    now,
    ...(deps.summaryIntervalMs ? { intervalMs: deps.summaryIntervalMs } : {}),
    snapshot: () => ({
      inFlight: pipeline?.inFlight ?? 0,
      breakers: Object.fromEntries(Object.values(breakers).map((b) => [b.name, b.state])),
      queueVisible: metrics.queueMessages.get({ queue: "main", state: "visible" }),
      queueInFlight: metrics.queueMessages.get({ queue: "main", state: "in_flight" }),
    }),
  });

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
      now: monotonic,
      random,
      onStale: (kind, code) => {
        metrics.staleReceipts.inc({ kind });
        logger.warn("stale receipt handle", { kind, code });
      },
      onDlqFallback: (error) =>
        logger.warn("the DLQ refused the reason attribute; sending a minimal ASCII reason", {
          error,
        }),
    });
    const heartbeat = new VisibilityHeartbeat({
      // Retried only while it can still help: about the heartbeat's lead time.
      extend: (handle, seconds) =>
        settler!.changeVisibility(handle, seconds, config.visibilityTimeoutSeconds * 500),
      visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
      // The pipeline's receive times are monotonic: the same clock here.
      now: monotonic,
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
    }, {
      redrive: () => redrive.state,
      sqs,
      settler,
      heartbeat,
      lookup: (userId) => profiles.lookup(userId),
      // `signal` (the grace) reaches the limiter's queue: past it, a queued submission never
      // starts. A submission on the wire is awaited (HTTP_TIMEOUT_MS) unless the stop is forced.
      submit: (document, signal) =>
        breakers.validator.run(
          () => validatorLimiter.run(() => validator.submit(document, forced.signal), signal),
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
    }, {
      metrics,
      logger,
      onOutcome: (outcome, ms) => summary.record(outcome, ms),
      now,
      monotonic,
      random,
    });
    summary.start();
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
      // Long polls may still be open (see Pipeline): the grace covers them and the drain.
      const settled = running.then(() => pipeline?.drain());
      const drained = await within(settled, graceMs, work.signal);
      if (!drained) {
        if (!forced.signal.aborted) {
          logger.warn("grace period over; releasing unfinished messages", {
            in_flight: pipeline?.inFlight ?? 0,
          });
        }
        work.abort(new DOMException("shutdown grace period over", "AbortError"));
        // Submissions on the wire are waited for (unless forced): up to one request timeout.
        await within(settled, config.httpTimeoutMs + 1000);
      }
      if (settler) await within(settler.flush(), (STOP_FLUSH_SECONDS - 1) * 1000);
      background.abort();
      summary.stop();
      logger.info("stopped");
    })();
    return stopping;
  };

  const force = (): Promise<void> => {
    if (!forced.signal.aborted) {
      logger.warn("forced stop: abandoning requests in flight; releasing unfinished messages", {
        in_flight: pipeline?.inFlight ?? 0,
      });
      forced.abort(new DOMException("forced stop", "AbortError"));
      work.abort(new DOMException("forced stop", "AbortError"));
    }
    return stop();
  };

  const done = running.then(() => stopping ?? Promise.resolve());
  return { app, logger, metrics, done, stop, force };
}
