/**
 * The two HTTP downstreams wired for the pipeline: the enrichment API behind
 * the profile cache and the validator, each with its adaptive concurrency
 * limit, its breaker, its redirect watch and its request metrics.
 */
import type { Backlog } from "./backlog_pause.ts";
import { adaptiveSemaphore } from "../lib/adaptive_limit.ts";
import type { CircuitBreaker } from "../lib/circuit_breaker.ts";
import { EnrichClient } from "../adapters/enrich_client.ts";
import type { RedirectWatch } from "./redirects.ts";
import { isRetriable } from "../lib/errors.ts";
import { ProfileSource } from "../flow/profile_source.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import { type Submission, ValidatorClient } from "../adapters/validator_client.ts";
import type { Clock } from "../lib/clock.ts";
import type { Traced, Tracer } from "../lib/tracer.ts";
import type { Config } from "./config.ts";

export type DownstreamSettings = Pick<
  Config,
  | "enrichUrl"
  | "validatorUrl"
  | "httpTimeoutMs"
  | "enrichConcurrency"
  | "validatorConcurrency"
  | "cacheTtlSeconds"
  | "cacheMaxEntries"
  | "enrichBatchMax"
  | "enrichBatchWaitMs"
>;

export interface DownstreamPorts {
  fetch: typeof fetch;
  breakers: { enrichment: CircuitBreaker; validator: CircuitBreaker };
  redirects: RedirectWatch;
}

export interface DownstreamServices {
  clock: Clock;
  metrics: SluiceMetrics;
  /** Batch lookups' own spans; unset: they carry no trace context. */
  tracer?: Tracer | undefined;
}

export interface Downstream {
  profiles: ProfileSource;
  /**
   * One submission: `signal` (the grace) reaches the limiter's queue, so past it a queued
   * submission never starts; one on the wire is abandoned only when `forced` aborts.
   */
  submit(
    document: string,
    signal: AbortSignal,
    forced: AbortSignal,
    trace?: Traced,
  ): Promise<Submission>;
  /** Submissions waiting for a validator slot, and the limit now (app/backlog_pause.ts). */
  validatorBacklog(): Backlog;
}

export function wireDownstream(
  settings: DownstreamSettings,
  ports: DownstreamPorts,
  services: DownstreamServices,
): Downstream {
  const { clock, metrics } = services;
  const http = (target: string) => ({
    timeoutMs: settings.httpTimeoutMs,
    fetch: ports.fetch,
    clock,
    onResponse: (code: string, ms: number) => {
      ports.redirects.answered(target, code);
      metrics.downstreamRequests.inc({ target, code });
      metrics.downstreamDuration.observe({ target }, ms / 1000);
    },
    onRedirect: ports.redirects.redirected.bind(ports.redirects),
  });
  const limiter = (target: string, max: number) => {
    const semaphore = adaptiveSemaphore({
      clock,
      max,
      // Start halfway: the limit finds the downstream's capacity from there in a few round trips.
      initial: Math.max(1, Math.ceil(max / 2)),
      onChange: (limit) => metrics.concurrencyLimit.set({ target }, limit),
    });
    metrics.concurrencyLimit.set({ target }, semaphore.limit);
    return semaphore;
  };
  const enrichLimiter = limiter("enrichment", settings.enrichConcurrency);
  const validatorLimiter = limiter("validator", settings.validatorConcurrency);
  const enrich = new EnrichClient({ baseUrl: settings.enrichUrl, ...http("enrichment") });
  const validator = new ValidatorClient({ url: settings.validatorUrl, ...http("validator") });
  const profiles = new ProfileSource({
    client: enrich,
    breaker: ports.breakers.enrichment,
    limiter: enrichLimiter,
    cacheTtlMs: settings.cacheTtlSeconds * 1000,
    cacheMaxEntries: settings.cacheMaxEntries,
    batchMax: settings.enrichBatchMax,
    batchWaitMs: settings.enrichBatchWaitMs,
    maxConcurrentBatches: settings.enrichConcurrency,
    onCache: (result) => metrics.cacheRequests.inc({ result }),
    onBatch: (size) => metrics.enrichBatchSize.observe(undefined, size),
    clock,
    tracer: services.tracer,
  });
  const submit = (document: string, signal: AbortSignal, forced: AbortSignal, trace?: Traced) =>
    // Breaker inside the limiter: a submission that waited for a slot while the breaker
    // opened is refused, not sent (profile_source.ts's #guarded has the same order).
    validatorLimiter.run(
      () =>
        ports.breakers.validator.run(() => validator.submit(document, forced, trace), isRetriable),
      signal,
    );
  const validatorBacklog = () => ({
    pending: validatorLimiter.pending,
    limit: validatorLimiter.limit,
  });
  return { profiles, submit, validatorBacklog };
}
