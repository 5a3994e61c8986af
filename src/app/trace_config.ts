/**
 * The OpenTelemetry variables sluice honours (docs/tracing.md), as the OpenTelemetry
 * specification names them: where spans go, how they are sent, what describes the service,
 * which traces are sampled. Parsed by config.ts with the rest of the environment.
 */
import { z } from "zod";
import { SAMPLER_NAMES, type SamplerName } from "../lib/trace_sampler.ts";
import type { ConfigVar } from "./config.ts";

export interface TraceConfig {
  /** The OTLP/HTTP traces URL; undefined: no export (propagation still on). */
  tracesUrl: string | undefined;
  protocol: "http/json" | "http/protobuf";
  /** Sent with every export (authentication); never printed. */
  headers: Record<string, string>;
  timeoutMs: number;
  serviceName: string;
  resourceAttributes: Record<string, string>;
  sampler: SamplerName;
  /** The ratio of the traceidratio samplers. */
  samplerRatio: number;
  maxQueueSize: number;
  maxBatchSize: number;
  scheduleDelayMs: number;
}

const int = (min: number, max: number) =>
  z.string().trim().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(max));
const httpUrl = z.string().trim().refine((value) => {
  const parsed = URL.parse(value);
  return parsed !== null && (parsed.protocol === "http:" || parsed.protocol === "https:");
});

/** `key=value,key2=value2`, values percent-decoded (the W3C Baggage form OTEL_* lists use). */
export function parseKeyValueList(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const item of text.split(",")) {
    if (item.trim() === "") continue;
    const eq = item.indexOf("=");
    if (eq <= 0) return undefined;
    const key = item.slice(0, eq).trim();
    try {
      out[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
    if (key === "") return undefined;
  }
  return out;
}

const keyValues = z.string().transform((text, ctx) => {
  const parsed = parseKeyValueList(text);
  if (!parsed) ctx.addIssue({ code: "custom", message: "not a key=value list" });
  return parsed ?? {};
});

export const TRACE_VARS: readonly ConfigVar[] = [
  {
    name: "OTEL_EXPORTER_OTLP_ENDPOINT",
    expected: "an http(s) URL of an OTLP/HTTP receiver",
    schema: httpUrl,
    help: "OTLP/HTTP receiver base URL: spans go to {endpoint}/v1/traces; unset: no export",
  },
  {
    name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    expected: "an http(s) URL of an OTLP/HTTP receiver",
    schema: httpUrl,
    help: "OTLP/HTTP traces URL, used as given (wins over OTEL_EXPORTER_OTLP_ENDPOINT)",
  },
  {
    name: "OTEL_EXPORTER_OTLP_PROTOCOL",
    default: "http/protobuf",
    expected: "http/protobuf or http/json",
    schema: z.enum(["http/protobuf", "http/json"]),
    help: "OTLP/HTTP encoding (grpc is not supported)",
  },
  {
    name: "OTEL_EXPORTER_OTLP_HEADERS",
    expected: "a key=value list, comma-separated, values percent-encoded",
    schema: keyValues,
    help: "headers sent with every export (authentication)",
    secret: true,
  },
  {
    name: "OTEL_EXPORTER_OTLP_TIMEOUT",
    default: "10000",
    expected: "an integer 1-600000 (ms)",
    schema: int(1, 600_000),
    help: "timeout per export request, ms",
  },
  {
    name: "OTEL_SERVICE_NAME",
    default: "sluice",
    expected: "a non-empty name",
    schema: z.string().trim().min(1),
    help: "service.name of the exported spans",
  },
  {
    name: "OTEL_RESOURCE_ATTRIBUTES",
    expected: "a key=value list, comma-separated, values percent-encoded",
    schema: keyValues,
    help: "more resource attributes (deployment.environment=prod,...)",
  },
  {
    name: "OTEL_TRACES_SAMPLER",
    default: "parentbased_always_on",
    expected: SAMPLER_NAMES.join(", "),
    schema: z.string().trim().toLowerCase().pipe(z.enum(SAMPLER_NAMES)),
    help: "which traces are recorded and exported",
  },
  {
    name: "OTEL_TRACES_SAMPLER_ARG",
    default: "1",
    expected: "a number 0-1",
    schema: z.string().trim().regex(/^(0|1|0?\.\d+|1\.0*)$/).transform(Number),
    help: "the sampling ratio of the traceidratio samplers",
  },
  {
    name: "OTEL_BSP_MAX_QUEUE_SIZE",
    default: "2048",
    expected: "an integer 1-1000000",
    schema: int(1, 1_000_000),
    help: "finished spans held for export; more are dropped (sluice_spans_dropped_total)",
  },
  {
    name: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    default: "512",
    expected: "an integer 1-100000",
    schema: int(1, 100_000),
    help: "spans per export request",
  },
  {
    name: "OTEL_BSP_SCHEDULE_DELAY",
    default: "5000",
    expected: "an integer 0-600000 (ms)",
    schema: int(0, 600_000),
    help: "how long a partial batch of spans waits before it is sent, ms",
  },
];

/** `{endpoint}/v1/traces`, the path appended to whatever path the base has. */
export function tracesUrlOf(endpoint: string): string {
  const url = new URL(endpoint);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/traces`;
  return url.toString();
}

/** The trace settings, each variable read through `read` (config.ts's checks and reports). */
export function traceConfigOf(read: <T>(name: string) => T | undefined): TraceConfig {
  const own = read<string>("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const base = read<string>("OTEL_EXPORTER_OTLP_ENDPOINT");
  return {
    tracesUrl: own ?? (base === undefined ? undefined : tracesUrlOf(base)),
    protocol: read("OTEL_EXPORTER_OTLP_PROTOCOL") ?? "http/protobuf",
    headers: read("OTEL_EXPORTER_OTLP_HEADERS") ?? {},
    timeoutMs: read("OTEL_EXPORTER_OTLP_TIMEOUT") ?? 10_000,
    serviceName: read("OTEL_SERVICE_NAME") ?? "sluice",
    resourceAttributes: read("OTEL_RESOURCE_ATTRIBUTES") ?? {},
    sampler: read("OTEL_TRACES_SAMPLER") ?? "parentbased_always_on",
    samplerRatio: read("OTEL_TRACES_SAMPLER_ARG") ?? 1,
    maxQueueSize: read("OTEL_BSP_MAX_QUEUE_SIZE") ?? 2048,
    maxBatchSize: read("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") ?? 512,
    scheduleDelayMs: read("OTEL_BSP_SCHEDULE_DELAY") ?? 5000,
  };
}
