/**
 * An OTLP ExportTraceServiceRequest in the protobuf JSON mapping OTLP/HTTP `http/json` uses:
 * lowerCamelCase field names, trace and span ids as hex (not base64), 64-bit times as decimal
 * strings, enums as numbers (docs/tracing.md).
 */
import type { AttributeValue, SpanData } from "../lib/tracer.ts";

/** What every span of one export shares: the resource and the instrumentation scope. */
export interface OtlpResource {
  attributes: Record<string, AttributeValue>;
  scopeName: string;
  scopeVersion: string;
}

/** Epoch ms (fractional) as the decimal string of epoch nanoseconds. */
export function unixNanos(ms: number): string {
  let whole = Math.floor(ms);
  let frac = Math.round((ms - whole) * 1e6);
  if (frac >= 1e6) {
    whole += 1;
    frac = 0;
  }
  return whole === 0 && frac === 0 ? "0" : `${whole}${String(frac).padStart(6, "0")}`;
}

function anyValue(value: AttributeValue): Record<string, unknown> {
  if (typeof value === "string") return { stringValue: value };
  if (typeof value === "boolean") return { boolValue: value };
  return Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value };
}

function keyValues(attributes: Record<string, AttributeValue>) {
  return Object.entries(attributes).map(([key, value]) => ({ key, value: anyValue(value) }));
}

function spanJson(span: SpanData): Record<string, unknown> {
  const out: Record<string, unknown> = {
    traceId: span.traceId,
    spanId: span.spanId,
    name: span.name,
    kind: span.kind,
    startTimeUnixNano: unixNanos(span.startMs),
    endTimeUnixNano: unixNanos(span.endMs),
    attributes: span.shared
      ? [...keyValues(span.shared.attributes), ...keyValues(span.attributes)]
      : keyValues(span.attributes),
  };
  if (span.parentSpanId) out.parentSpanId = span.parentSpanId;
  if (span.traceState) out.traceState = span.traceState;
  if (span.links) out.links = span.links.map((l) => ({ traceId: l.traceId, spanId: l.spanId }));
  if (span.error !== undefined) out.status = { code: 2, message: span.error };
  return out;
}

/** The request body for `spans`. */
export function otlpJson(resource: OtlpResource, spans: readonly SpanData[]): string {
  return JSON.stringify({
    resourceSpans: [{
      resource: { attributes: keyValues(resource.attributes) },
      scopeSpans: [{
        scope: { name: resource.scopeName, version: resource.scopeVersion },
        spans: spans.map(spanJson),
      }],
    }],
  });
}
