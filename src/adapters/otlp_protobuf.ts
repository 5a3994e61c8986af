/**
 * An OTLP ExportTraceServiceRequest in protobuf binary (`http/protobuf`), for the fields sluice
 * sets: the field numbers of opentelemetry-proto's trace, common and resource definitions
 * (docs/tracing.md). Exports are off the per-message path, so clarity wins over speed here.
 */
import type { AttributeValue, SpanData } from "../lib/tracer.ts";
import { type OtlpResource, unixNanos } from "./otlp_json.ts";

const encoder = new TextEncoder();

/** One message's fields, appended in order. */
class Fields {
  readonly parts: Uint8Array[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  #push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.#size += bytes.byteLength;
  }

  #varint(value: bigint): void {
    const out: number[] = [];
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.#push(Uint8Array.from(out));
  }

  #tag(field: number, wire: number): void {
    this.#varint(BigInt((field << 3) | wire));
  }

  varint(field: number, value: number | bigint): void {
    this.#tag(field, 0);
    this.#varint(BigInt(value));
  }

  bytes(field: number, value: Uint8Array): void {
    this.#tag(field, 2);
    this.#varint(BigInt(value.byteLength));
    this.#push(value);
  }

  string(field: number, value: string): void {
    this.bytes(field, encoder.encode(value));
  }

  hex(field: number, value: string): void {
    const out = new Uint8Array(value.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(value.slice(i * 2, i * 2 + 2), 16);
    this.bytes(field, out);
  }

  fixed64(field: number, value: bigint): void {
    this.#tag(field, 1);
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, value, true);
    this.#push(out);
  }

  double(field: number, value: number): void {
    this.#tag(field, 1);
    const out = new Uint8Array(8);
    new DataView(out.buffer).setFloat64(0, value, true);
    this.#push(out);
  }

  message(field: number, inner: Fields): void {
    this.bytes(field, inner.finish());
  }

  finish(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.#size);
    let offset = 0;
    for (const part of this.parts) {
      out.set(part, offset);
      offset += part.byteLength;
    }
    return out;
  }
}

/** KeyValue { key = 1; AnyValue value = 2 }; AnyValue string 1, bool 2, int64 3, double 4. */
function keyValue(key: string, value: AttributeValue): Fields {
  const any = new Fields();
  if (typeof value === "string") any.string(1, value);
  else if (typeof value === "boolean") any.varint(2, value ? 1 : 0);
  else if (Number.isInteger(value)) any.varint(3, BigInt(value));
  else any.double(4, value);
  const kv = new Fields();
  kv.string(1, key);
  kv.message(2, any);
  return kv;
}

function attributes(into: Fields, field: number, attrs: Record<string, AttributeValue>): void {
  for (const [key, value] of Object.entries(attrs)) into.message(field, keyValue(key, value));
}

/** Span: ids 1, 2, 4; trace_state 3; name 5; kind 6; times 7, 8; attributes 9; links 13; status 15. */
function spanFields(span: SpanData): Fields {
  const out = new Fields();
  out.hex(1, span.traceId);
  out.hex(2, span.spanId);
  if (span.traceState) out.string(3, span.traceState);
  if (span.parentSpanId) out.hex(4, span.parentSpanId);
  out.string(5, span.name);
  out.varint(6, span.kind);
  out.fixed64(7, BigInt(unixNanos(span.startMs)));
  out.fixed64(8, BigInt(unixNanos(span.endMs)));
  attributes(out, 9, span.attributes);
  for (const link of span.links ?? []) {
    const l = new Fields();
    l.hex(1, link.traceId);
    l.hex(2, link.spanId);
    out.message(13, l);
  }
  if (span.error !== undefined) {
    // Status { message = 2; code = 3 }: STATUS_CODE_ERROR is 2.
    const status = new Fields();
    status.string(2, span.error);
    status.varint(3, 2);
    out.message(15, status);
  }
  return out;
}

/** The request body for `spans`. */
export function otlpProtobuf(
  resource: OtlpResource,
  spans: readonly SpanData[],
): Uint8Array<ArrayBuffer> {
  const res = new Fields();
  attributes(res, 1, resource.attributes);
  const scope = new Fields();
  scope.string(1, resource.scopeName);
  scope.string(2, resource.scopeVersion);
  const scopeSpans = new Fields();
  scopeSpans.message(1, scope);
  for (const span of spans) scopeSpans.message(2, spanFields(span));
  const resourceSpans = new Fields();
  resourceSpans.message(1, res);
  resourceSpans.message(2, scopeSpans);
  const request = new Fields();
  request.message(1, resourceSpans);
  return request.finish();
}
