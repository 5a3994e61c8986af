/**
 * The composition root: builds the worker's object graph from a Config and the runtime's
 * services, in dependency order, handing each part only what it uses. Wiring only; what
 * the parts do lives in their own files. main.ts, the lab and tests all start the worker
 * through `startWorker`.
 */
import type { Hono } from "hono";
import { type Config, CONFIG_VARS, exposureWarning, STOP_FLUSH_SECONDS } from "./config.ts";
import { lintEnvNames } from "./env_lint.ts";
import { regionMismatch } from "./region_check.ts";
import { createLogger, type Logger } from "../lib/logger.ts";
import { type Clock, systemClock } from "../lib/clock.ts";
import { ConfigError } from "../lib/errors.ts";
import { Pipeline } from "../flow/pipeline.ts";
import { RedriveWatcher } from "../flow/redrive.ts";
import { Settler } from "../flow/settle.ts";
import { VisibilityHeartbeat } from "../flow/visibility_heartbeat.ts";
import type { IdempotencyGate } from "../flow/idempotency_gate.ts";
import type { FleetRate } from "../flow/rate_table.ts";
import {
  type BuildLabels,
  createSluiceMetrics,
  type SluiceMetrics,
} from "../domain/sluice_metrics.ts";
import { limitRepeats, RepeatLimiter } from "../lib/repeat_limiter.ts";
import { isFifoQueue, type SqsClient } from "../adapters/sqs_client.ts";
import { createServer } from "./server.ts";
import { StateLog } from "./state_log.ts";
import { SummaryLog } from "./summary_log.ts";
import { backlogPause } from "./backlog_pause.ts";
import { type Breakers, createBreakers, pausedFor } from "./breakers.ts";
import { type Downstream, wireDownstream } from "./downstream.ts";
import { Readiness } from "./health.ts";
import { Lifecycle, type Running, type RunningSignals } from "./lifecycle.ts";
import { QueueDepthPoller } from "./queue_depth.ts";
import { type RedirectWatch, watchRedirects } from "./redirects.ts";
import { SqsObserver } from "./sqs_observer.ts";
import { type AwsDeps, createSqsClient } from "./aws_clients.ts";
import { createIdempotency, type Idempotency, workerIdOf } from "./idempotency_wiring.ts";
import { createRateTable, type RateTable } from "./rate_table_wiring.ts";
import { wirePayloads } from "./payloads_wiring.ts";
import type { Payloads } from "../flow/payloads.ts";
import { createTracing, flushTraces, type Tracing } from "./tracing.ts";
import type { Sha256 } from "../adapters/sigv4.ts";

export interface WorkerDeps {
  /** The environment, for the credential chain. */
  env: Record<string, string | undefined>;
  readTextFile?: (path: string) => Promise<string>;
  homeDir?: string | undefined;
  /** Where log lines go. Default console.log. */
  write?: (line: string) => void;
  fetch?: typeof fetch;
  /** The hasher AWS requests are signed with. Default @noble/hashes. */
  sha256?: Sha256;
  /** Time and chance for every part. Default the system's. */
  clock?: Clock;
  /** The labels of `sluice_build_info` (main.ts passes the build stamp). Default "unknown". */
  build?: BuildLabels;
  /** Interval of the summary log line, ms. Default 30000. */
  summaryIntervalMs?: number;
}

export interface Worker {
  app: Hono;
  logger: Logger;
  metrics: SluiceMetrics;
  /** Resolves when the worker has stopped (after `stop()`); rejects when startup failed. */
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

/** What every part may use: time, the logger (repeats folded) and the metrics. */
interface Services {
  clock: Clock;
  logger: Logger;
  metrics: SluiceMetrics;
  repeats: RepeatLimiter;
  tracing: Tracing;
}

/** What the pipeline is built from once startup is done. */
interface Parts {
  sqs: SqsClient;
  redrive: RedriveWatcher;
  breakers: Breakers;
  downstream: Downstream;
  summary: SummaryLog;
  depth: QueueDepthPoller;
  idempotency: IdempotencyGate | undefined;
  rateFleet: FleetRate | undefined;
  payloads: Payloads | undefined;
}

export function startWorker(config: Config, deps: WorkerDeps): Worker {
  const services = createServices(config, deps);
  const { clock, logger, metrics } = services;
  // 1. What reports: state changes, readiness (told of changes before it can be read).
  const urls = {
    enrichment: config.enrichUrl,
    validator: config.validatorUrl,
    sqs: config.endpoint ?? new URL(config.queueUrl).origin,
  };
  const states = new StateLog({ logger, repeats: services.repeats, urls });
  const readiness = new Readiness(states);
  const breakers = createBreakers({
    table: config.idempotencyTable !== undefined,
    s3: config.payloads.s3,
    rateTable: config.rateLimitTable !== undefined,
    ports: { onChange: readiness.note },
    services: { clock, metrics, states },
  });
  // 2. The outside world: SQS, the downstreams, the table.
  const sqsSeen = new SqsObserver({
    ports: { breaker: breakers.sqs, onReadinessChange: readiness.note },
    services: { metrics },
  });
  const world = wireWorld(config, deps, services, { breakers, sqsSeen });
  // 3. What runs beside the pipeline, and the worker's life.
  const parts: Parts = {
    ...world.parts,
    summary: new SummaryLog({
      logger,
      clock,
      ...(deps.summaryIntervalMs ? { intervalMs: deps.summaryIntervalMs } : {}),
    }),
    depth: new QueueDepthPoller({
      settings: { queueUrl: config.queueUrl },
      ports: { sqs: world.parts.sqs, dlqUrl: () => world.parts.redrive.state.dlqUrl },
      services: { clock, logger, metrics },
    }),
  };
  const lifecycle = wireLifecycle(config, parts, services, world);
  // 4. What watches the rest, now that it all exists.
  const mismatch = regionMismatch(config.region, config.queueUrl, deps.env);
  if (mismatch) logger.warn(mismatch, { region: config.region, queue: config.queueUrl });
  observe(lifecycle, parts, { readiness, redirects: world.redirects, sqsSeen, metrics, mismatch });
  const app = createServer({ registry: metrics.registry, health: readiness.health });
  lifecycle.start();
  const stop = (graceMs?: number) => lifecycle.stop(graceMs);
  return { app, logger, metrics, done: lifecycle.done, stop, force: () => lifecycle.force() };
}

/** SQS with its RedrivePolicy, the downstreams, the table: each on its breaker. */
function wireWorld(
  config: Config,
  deps: WorkerDeps,
  services: Services,
  watch: { breakers: Breakers; sqsSeen: SqsObserver },
) {
  const { clock, logger, metrics } = services;
  const { breakers, sqsSeen } = watch;
  const aws: AwsDeps = { ...deps, clock };
  const sqs = createSqsClient(config, aws, sqsSeen.observe);
  const redriveConfig = { queueUrl: config.queueUrl, dlqQueueUrl: config.dlqQueueUrl };
  const redrive = new RedriveWatcher({ sqs, config: redriveConfig, logger, clock });
  sqsSeen.onQueueChange(() => redrive.refresh());
  const redirects = watchRedirects(logger);
  const downstream = wireDownstream(
    config,
    { fetch: deps.fetch ?? fetch, breakers, redirects },
    { clock, metrics, tracer: services.tracing.tracer },
  );
  const idempotency = breakers.table &&
    createIdempotency(config, aws, metrics, logger, workerIdOf(() => clock.random()), {
      breaker: breakers.table,
      clock,
    });
  const rateTable = breakers.rateTable &&
    createRateTable(config, aws, { metrics, logger, breaker: breakers.rateTable, clock });
  const payloads = wirePayloads(config, aws, breakers.s3, { metrics, logger });
  const parts = {
    sqs,
    redrive,
    breakers,
    downstream,
    idempotency: idempotency?.gate,
    rateFleet: rateTable?.fleet,
    payloads,
  };
  return { parts, redirects, idempotency, rateTable };
}

function createServices(config: Config, deps: WorkerDeps): Services {
  const clock = deps.clock ?? systemClock;
  const repeats = new RepeatLimiter({ clock });
  const logger = limitRepeats(
    createLogger({
      level: config.logLevel,
      format: config.logFormat,
      ...(deps.write ? { write: deps.write } : {}),
      clock,
    }),
    repeats,
  );
  const metrics = createSluiceMetrics(undefined, {
    idempotencyTable: config.idempotencyTable !== undefined,
  });
  const build = deps.build ?? { version: "unknown", commit: "unknown", runtime: "unknown" };
  metrics.buildInfo.set({ ...build }, 1);
  metrics.dedupeTtl.set(undefined, config.dedupTtlSeconds);
  const exposed = exposureWarning(config);
  if (exposed) logger.warn(exposed, { http_host: config.httpHost, http_port: config.httpPort });
  // A misspelled variable is otherwise silently ignored for its default: as check-config says.
  for (const line of lintEnvNames(deps.env, CONFIG_VARS.map((v) => v.name))) logger.warn(line);
  const tracing = createTracing(config.trace, {
    fetch: deps.fetch ?? fetch,
    clock,
    metrics,
    logger,
    version: build.version,
  });
  return { clock, logger, metrics, repeats, tracing };
}

function wireLifecycle(
  config: Config,
  parts: Parts,
  services: Services,
  tables: { idempotency: Idempotency | undefined; rateTable: RateTable | undefined },
): Lifecycle {
  return new Lifecycle({
    settings: {
      graceMs: config.shutdownGraceSeconds * 1000,
      wireMs: config.httpTimeoutMs + 1000,
      flushMs: (STOP_FLUSH_SECONDS - 1) * 1000,
    },
    ports: {
      // One read now; after a failure it is retried in the background until it succeeds.
      // A table that cannot serve stops startup before any receive.
      prepare: (signal) =>
        Promise.all([
          parts.redrive.start(signal),
          checkTable("IDEMPOTENCY_TABLE", tables.idempotency, services.logger, signal),
          checkTable("RATE_LIMIT_TABLE", tables.rateTable, services.logger, signal),
        ]),
      begin: (signals) => begin(config, parts, services, signals),
      stopped: () => {
        parts.summary.stop();
        services.tracing.exporter?.close();
      },
    },
    services: { logger: services.logger, clock: services.clock },
  });
}

/** Readiness, the summary line and the in-flight gauge read the running worker. */
function observe(
  lifecycle: Lifecycle,
  parts: Parts,
  reporting: {
    readiness: Readiness;
    redirects: RedirectWatch;
    sqsSeen: SqsObserver;
    metrics: SluiceMetrics;
    mismatch: string | undefined;
  },
): void {
  const { readiness, redirects, sqsSeen, metrics, mismatch } = reporting;
  const inFlight = () => lifecycle.running?.pipeline.inFlight ?? 0;
  const breakers = Object.values(parts.breakers);
  readiness.observe(() => ({
    starting: lifecycle.starting,
    pipelineAlive: lifecycle.running?.pipeline.alive ?? false,
    redrive: parts.redrive.state,
    breakers: breakers.map((b) => ({
      name: b.name,
      state: b.state,
      remainingCooldownMs: b.remainingCooldownMs(),
    })),
    redirects: redirects.current(),
    lastSqsError: sqsSeen.lastError,
    regionMismatch: mismatch,
  }));
  parts.summary.observe(() => ({
    inFlight: inFlight(),
    breakers: Object.fromEntries(breakers.map((b) => [b.name, b.state])),
    queueVisible: metrics.queueMessages.get({ queue: "main", state: "visible" }),
    queueInFlight: metrics.queueMessages.get({ queue: "main", state: "in_flight" }),
  }));
  // Read when scraped, not set twice per message.
  metrics.registry.onCollect(() => metrics.inFlight.set(undefined, inFlight()));
}

/**
 * Startup stops (exit 2, one line) when a table (the idempotency or the rate-limit one) cannot
 * serve: missing, refused, the wrong key. A table that only did not answer in time is the breaker's to watch.
 */
async function checkTable(
  variable: string,
  table: { check(signal: AbortSignal): Promise<string[]> } | undefined,
  logger: Logger,
  signal: AbortSignal,
) {
  if (!table) return;
  let problems: string[];
  try {
    problems = await table.check(signal);
  } catch (error) {
    if (signal.aborted) return;
    logger.warn(`cannot check ${variable} at startup; starting, its breaker watches it`, {
      error,
    });
    return;
  }
  if (problems.length > 0 && !signal.aborted) {
    throw new ConfigError(variable, problems.join("; "));
  }
}

/** Startup is done: builds the pipeline with its settler and heartbeat, starts what runs beside. */
function begin(config: Config, parts: Parts, services: Services, signals: RunningSignals): Running {
  const policy = parts.redrive.state;
  services.logger.info("sluice started", {
    queue: config.queueUrl,
    dlq: policy.dlqUrl ?? null,
    max_receive_count: policy.maxReceiveCount ?? null,
    redrive_policy: policy.known ? "known" : `not read yet: ${policy.pending}`,
    max_in_flight: config.maxInFlight,
  });
  const settler = wireSettler(config, parts, services);
  const heartbeat = wireHeartbeat(config, settler, services, parts.idempotency);
  const pipeline = wirePipeline(config, { ...parts, settler, heartbeat }, services, signals);
  parts.summary.start();
  heartbeat.run(signals.background);
  parts.depth.run(signals.background);
  // The last spans end with the last settles: exported after them, in the same bounded flush.
  const { tracing, clock } = services;
  const flush = async () => {
    await settler.flush();
    await flushTraces(tracing, config.trace.timeoutMs, clock, signals.background);
  };
  return { pipeline, settler: tracing.exporter ? { flush } : settler };
}

function wireSettler(config: Config, parts: Parts, services: Services): Settler {
  const { logger, metrics, clock } = services;
  return new Settler({
    sqs: parts.sqs,
    queueUrl: config.queueUrl,
    fifo: isFifoQueue(config.queueUrl),
    // A DLQ found after startup is used from then on.
    dlqUrl: () => parts.redrive.state.dlqUrl,
    clock,
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

/** IDEMPOTENCY_TABLE: each message's lock follows its visibility, and ends with a stale receipt. */
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
    clock: services.clock,
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
  const intakeBreakers = [
    breakers.validator,
    breakers.sqs,
    ...(breakers.table ? [breakers.table] : []),
    ...(breakers.rateTable ? [breakers.rateTable] : []),
  ];
  return new Pipeline({
    intake: {
      queueUrl: config.queueUrl,
      fifo: isFifoQueue(config.queueUrl),
      maxBatch: config.maxBatch,
      receiveWaitSeconds: config.receiveWaitSeconds,
      visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
      maxInFlight: config.maxInFlight,
    },
    dedupe: { dedupTtlSeconds: config.dedupTtlSeconds },
    policy: {
      deleteOn4xx: config.deleteOn4xx,
      deleteOn5xx: config.deleteOn5xx,
      unknownUserPolicy: config.unknownUserPolicy,
    },
    rate: config.rateLimit,
  }, {
    redrive: () => redrive.state,
    sqs: parts.sqs,
    settler: parts.settler,
    heartbeat: parts.heartbeat,
    lookup: (userId, trace) => downstream.profiles.lookup(userId, trace),
    cached: (userId) => downstream.profiles.cached(userId),
    // Past the grace a queued submission never starts; one on the wire is awaited
    // (HTTP_TIMEOUT_MS) unless the stop is forced.
    submit: (document, graceOver, trace) =>
      downstream.submit(document, graceOver, signals.forced, trace),
    pausedFor: () =>
      pausedFor(intakeBreakers) ?? backlogPause(downstream.validatorBacklog()) ??
        parts.payloads?.paused(),
    idempotency: parts.idempotency,
    rateFleet: parts.rateFleet,
    payloads: parts.payloads,
  }, {
    clock: services.clock,
    metrics: services.metrics,
    logger: services.logger,
    onOutcome: (outcome, ms) => summary.record(outcome, ms),
    tracer: services.tracing.tracer,
  });
}
