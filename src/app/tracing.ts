/**
 * The tracer and, with an OTLP endpoint set, its exporter (docs/tracing.md): the sampler of
 * OTEL_TRACES_SAMPLER, the resource of OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, drops
 * counted in `sluice_spans_dropped_total`, export failures warned (rate-limited), never a
 * message's concern.
 */
import { OtlpExporter } from "../adapters/otlp_exporter.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { createSampler } from "../lib/trace_sampler.ts";
import { Tracer } from "../lib/tracer.ts";
import type { TraceConfig } from "./trace_config.ts";

export interface Tracing {
  tracer: Tracer;
  /** Undefined when export is off. */
  exporter: OtlpExporter | undefined;
}

/** The longest a stop waits for the last spans to be exported, ms. */
export const TRACE_FLUSH_MS = 5000;

/**
 * Sends the spans still queued at shutdown, for at most TRACE_FLUSH_MS (or the export timeout,
 * when shorter) and never past `signal`: a receiver that hangs does not hold up the stop.
 */
export async function flushTraces(
  tracing: Tracing,
  timeoutMs: number,
  clock: Pick<Clock, "timer">,
  signal: AbortSignal,
): Promise<void> {
  const exporter = tracing.exporter;
  if (!exporter) return;
  const done = new AbortController();
  const cancel = clock.timer(Math.min(TRACE_FLUSH_MS, timeoutMs), () => done.abort());
  const stop = () => done.abort();
  signal.addEventListener("abort", stop, { once: true });
  try {
    await exporter.flush(done.signal);
  } finally {
    cancel();
    signal.removeEventListener("abort", stop);
  }
}

export function createTracing(
  config: TraceConfig,
  deps: {
    fetch: typeof fetch;
    clock: Clock;
    metrics: SluiceMetrics;
    logger: Logger;
    version: string;
  },
): Tracing {
  const { clock, metrics, logger } = deps;
  const sampler = createSampler(config.sampler, config.samplerRatio);
  if (config.tracesUrl === undefined) {
    return { tracer: new Tracer({ sampler, clock }), exporter: undefined };
  }
  const exporter = new OtlpExporter({
    url: config.tracesUrl,
    protocol: config.protocol,
    headers: config.headers,
    timeoutMs: config.timeoutMs,
    resource: {
      attributes: {
        "service.name": config.serviceName,
        "service.version": deps.version,
        "telemetry.sdk.name": "sluice",
        "telemetry.sdk.language": "js",
        ...config.resourceAttributes,
        // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (the spec).
        ...(config.serviceName !== "sluice" || !config.resourceAttributes["service.name"]
          ? { "service.name": config.serviceName }
          : {}),
      },
      scopeName: "sluice",
      scopeVersion: deps.version,
    },
    maxQueueSize: config.maxQueueSize,
    maxBatchSize: config.maxBatchSize,
    scheduleDelayMs: config.scheduleDelayMs,
    fetch: deps.fetch,
    clock,
    onDropped: (count, reason) => metrics.spansDropped.inc({ reason }, count),
    onError: (error) =>
      logger.warn("could not export spans; they are dropped (messages are not affected)", {
        error,
      }),
  });
  return { tracer: new Tracer({ sampler, clock, sink: exporter }), exporter };
}
