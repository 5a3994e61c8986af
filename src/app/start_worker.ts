/**
 * The composition root: builds the worker's object graph from a Config and the
 * runtime's services and hands the parts to each other. Wiring only; what the
 * parts do lives in their own files (health, lifecycle, queue depth, …).
 * main.ts, the lab and tests all start the worker through `startWorker`.
 */
import type { Hono } from "hono";
import { type Config, exposureWarning, STOP_FLUSH_SECONDS } from "./config.ts";
import { createLogger, type Logger } from "../lib/logger.ts";
import { Pipeline } from "../flow/pipeline.ts";
import { sleep } from "../lib/retry.ts";
import { RedriveWatcher } from "../flow/redrive.ts";
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
import { VisibilityHeartbeat } from "../flow/visibility_heartbeat.ts";
import { backlogPause } from "./backlog_pause.ts";
import { type Breakers, createBreakers, pausedFor } from "./breakers.ts";
import { type Downstream, wireDownstream } from "./downstream.ts";
import { Readiness } from "./health.ts";
import { Lifecycle, type Running, type RunningSignals } from "./lifecycle.ts";
import { QueueDepthPoller } from "./queue_depth.ts";
import { watchRedirects } from "./redirects.ts";
import { SqsObserver } from "./sqs_observer.ts";
import { createSqsClient } from "./aws_clients.ts";
import { createIdempotency, type Idempotency, workerIdOf } from "./idempotency_wiring.ts";
import type { IdempotencyGate } from "../flow/idempotency_gate.ts";
import { ConfigError } from "../lib/errors.ts";

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

// Moved to flow/redrive.ts; re-exported for the CLI.
export { discoverRedrive, type Redrive } from "../flow/redrive.ts";

/** The services every part may use: clocks, randomness, sleep, logger and metrics. */
interface Services {
  now: () => number;
  /** Monotonic clock, ms, for time since receive, holds and retry budgets. */
  monotonic: () => number;
  random: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  logger: Logger;
  metrics: SluiceMetrics;
  /** Repeated identical warnings: the first, then one a minute with a count. */
  repeats: RepeatLimiter;
}

function createServices(config: Config, deps: WorkerDeps): Services {
  const now = deps.now ?? Date.now;
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
  const monotonic = deps.monotonic ?? (() => performance.now());
  return { now, monotonic, random: deps.random ?? Math.random, sleep, logger, metrics, repeats };
}

/** What the pipeline is built from once startup is done. */
interface Parts {
  sqs: SqsClient;
  idempotency: IdempotencyGate | undefined;
  redrive: RedriveWatcher;
  breakers: Breakers;
  downstream: Downstream;
  summary: SummaryLog;
  depth: QueueDepthPoller;
}

export function startWorker(config: Config, deps: WorkerDeps): Worker {
  const services = createServices(config, deps);
  const { now, logger, metrics } = services;
  const sqsUrl = config.endpoint ?? new URL(config.queueUrl).origin;
  const urls = { enrichment: config.enrichUrl, validator: config.validatorUrl, sqs: sqsUrl };
  const states = new StateLog({ logger, repeats: services.repeats, urls });
  // Breakers and SQS results change readiness; `readiness` is built below, once all it reads is.
  const onReadinessChange = () => readiness.note();
  const breakers = createBreakers({
    table: config.idempotencyTable !== undefined,
    ports: { onChange: onReadinessChange },
    services: { now, metrics, states },
  });
  const sqsSeen = new SqsObserver({
    // The watcher is built below, on the client this observer watches.
    ports: { breaker: breakers.sqs, onReadinessChange, onQueueChange: () => redrive.refresh() },
    services: { metrics },
  });
  const sqs = createSqsClient(config, deps, sqsSeen.observe);
  const redirects = watchRedirects(logger);
  const downstream = wireDownstream(
    config,
    { fetch: deps.fetch ?? fetch, breakers, redirects },
    { now, metrics },
  );
  const redrive = new RedriveWatcher({ sqs, config, logger, random: services.random });
  const summary = new SummaryLog({
    logger,
    now,
    ...(deps.summaryIntervalMs ? { intervalMs: deps.summaryIntervalMs } : {}),
    snapshot: () => ({
      inFlight: lifecycle.running?.pipeline.inFlight ?? 0,
      breakers: Object.fromEntries(Object.values(breakers).map((b) => [b.name, b.state])),
      queueVisible: metrics.queueMessages.get({ queue: "main", state: "visible" }),
      queueInFlight: metrics.queueMessages.get({ queue: "main", state: "in_flight" }),
    }),
  });
  const depth = new QueueDepthPoller({
    settings: { queueUrl: config.queueUrl },
    ports: { sqs, dlqUrl: () => redrive.state.dlqUrl },
    services,
  });
  const idempotency = breakers.table &&
    createIdempotency(config, deps, metrics, logger, workerIdOf(services.random), {
      breaker: breakers.table,
      now,
      random: services.random,
      sleep: services.sleep,
    });
  const parts: Parts = {
    sqs,
    idempotency: idempotency?.gate,
    redrive,
    breakers,
    downstream,
    summary,
    depth,
  };
  const lifecycle = new Lifecycle({
    settings: {
      graceMs: config.shutdownGraceSeconds * 1000,
      wireMs: config.httpTimeoutMs + 1000,
      flushMs: (STOP_FLUSH_SECONDS - 1) * 1000,
    },
    ports: {
      // One read now; after a failure it is retried in the background until it succeeds.
      // Retries stop with intake: a held message stays held through the drain either way.
      // A table that cannot serve stops startup before any receive.
      prepare: (signal) => Promise.all([redrive.start(signal), checkTable(idempotency, signal)]),
      begin: (signals) => begin(config, parts, services, signals),
      stopped: () => summary.stop(),
    },
    services: { logger, sleep: services.sleep },
  });
  const readiness = new Readiness(() => ({
    starting: lifecycle.starting,
    pipelineAlive: lifecycle.running?.pipeline.alive ?? false,
    redrive: redrive.state,
    breakers: Object.values(breakers).map((b) => ({
      name: b.name,
      state: b.state,
      remainingCooldownMs: b.remainingCooldownMs(),
    })),
    redirects: redirects.current(),
    lastSqsError: sqsSeen.lastError,
  }), states);
  // Read when scraped, not set twice per message.
  metrics.registry.onCollect(() =>
    metrics.inFlight.set(undefined, lifecycle.running?.pipeline.inFlight ?? 0)
  );
  const app = createServer({ registry: metrics.registry, health: readiness.health });
  lifecycle.start();
  const stop = (graceMs?: number) => lifecycle.stop(graceMs);
  return { app, logger, metrics, done: lifecycle.done, stop, force: () => lifecycle.force() };
}

/** Startup is done: builds the pipeline with its settler and heartbeat, starts what runs beside. */
function begin(
  config: Config,
  parts: Parts,
  services: Services,
  signals: RunningSignals,
): Running {
  const policy = parts.redrive.state;
  services.logger.info("sluice started", {
    queue: config.queueUrl,
    dlq: policy.dlqUrl ?? null,
    max_receive_count: policy.maxReceiveCount ?? null,
    redrive_policy: policy.known ? "known" : `not read yet: ${policy.pending}`,
    max_in_flight: config.maxInFlight,
  });
  const settler = wireSettler(config, parts, services);
  // IDEMPOTENCY_TABLE: the shared claim follows the message's visibility (the heartbeat) and
  // is asked by the pipeline before a submission. Unset: in-process dedupe only.
  const heartbeat = wireHeartbeat(config, settler, services, parts.idempotency);
  const pipeline = wirePipeline(config, { ...parts, settler, heartbeat }, services, signals);
  parts.summary.start();
  heartbeat.run(signals.background);
  parts.depth.run(signals.background);
  return { pipeline, settler };
}

/** Startup stops (exit 2, one line) when the idempotency table cannot serve. */
async function checkTable(idempotency: Idempotency | undefined, signal: AbortSignal) {
  const problems = await idempotency?.check(signal) ?? [];
  if (problems.length > 0 && !signal.aborted) {
    throw new ConfigError("IDEMPOTENCY_TABLE", problems.join("; "));
  }
}

function wireSettler(config: Config, parts: Parts, services: Services): Settler {
  const { logger, metrics } = services;
  const redrive = parts.redrive;
  return new Settler({
    sqs: parts.sqs,
    queueUrl: config.queueUrl,
    // Read on every use (Settler keeps the options object): a DLQ found later is used.
    get dlqUrl() {
      return redrive.state.dlqUrl;
    },
    now: services.monotonic,
    random: services.random,
    onStale: (kind, code) => {
      metrics.staleReceipts.inc({ kind });
      logger.warn("stale receipt handle", { kind, code });
    },
    onAmbiguousSend: (kind) => {
      metrics.atLeastOnce.inc({
        cause: kind === "dlq_send" ? "dlq_send_retried" : "requeue_retried",
      });
      logger.warn(
        "an SQS send was retried after an answer that may have been lost; the queue may hold two copies",
        { kind },
      );
    },
    onDlqFallback: (error) =>
      logger.warn("the DLQ refused the reason attribute; sending a minimal ASCII reason", {
        error,
      }),
  });
}

function wireHeartbeat(
  config: Config,
  settler: Settler,
  services: Services,
  idempotency: IdempotencyGate | undefined,
): VisibilityHeartbeat {
  return new VisibilityHeartbeat({
    // Retried only while it can still help: about the heartbeat's lead time.
    extend: (handle, seconds) =>
      settler.changeVisibility(handle, seconds, config.visibilityTimeoutSeconds * 500),
    visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
    // The pipeline's receive times are monotonic: the same clock here.
    now: services.monotonic,
    onExtend: () => services.metrics.visibilityExtensions.inc(),
    ...(idempotency
      ? {
        alsoExtend: (handle, seconds) => idempotency.extend(handle, seconds),
        onStale: (handle) => idempotency.lost(handle),
      }
      : {}),
    onLost: (_handle, reason) =>
      services.logger.warn("could not extend a message's visibility; it may be received again", {
        reason,
      }),
  });
}

function wirePipeline(
  config: Config,
  parts: Parts & { settler: Settler; heartbeat: VisibilityHeartbeat },
  services: Services,
  signals: RunningSignals,
): Pipeline {
  const { breakers, redrive, downstream, summary } = parts;
  return new Pipeline({
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
    sqs: parts.sqs,
    settler: parts.settler,
    heartbeat: parts.heartbeat,
    lookup: (userId) => downstream.profiles.lookup(userId),
    cached: (userId) => downstream.profiles.cached(userId),
    // Past the grace (`signal`) a queued submission never starts; one on the wire is awaited
    // (HTTP_TIMEOUT_MS) unless the stop is forced.
    submit: (document, signal) => downstream.submit(document, signal, signals.forced),
    pausedFor: () =>
      pausedFor([breakers.validator, breakers.sqs, ...(breakers.table ? [breakers.table] : [])]) ??
        backlogPause(downstream.validatorBacklog()),
    idempotency: parts.idempotency,
  }, {
    metrics: services.metrics,
    logger: services.logger,
    onOutcome: (outcome, ms) => summary.record(outcome, ms),
    now: services.now,
    monotonic: services.monotonic,
    random: services.random,
  });
}
