/**
 * An OTLP ExportTraceServiceRequest in protobuf binary (`http/protobuf`), for the fields sluice
 * sets: the field numbers of opentelemetry-proto's trace, common and resource definitions
 * (docs/tracing.md). Every exported span passes through here, so the common cases (short ASCII
 * strings, known keys) take a short way.
 */
import type { AttributeValue, SharedAttributes, SpanData } from "../lib/tracer.ts";
import type { OtlpResource } from "./otlp_json.ts";

const encoder = new TextEncoder();
const TWO_32 = 2 ** 32;
/** Encoded attribute keys and span names; bounded, since a key is any string in principle. */
const KEYS = new Map<string, Uint8Array>();
const MAX_KEYS = 512;
/** Shared attributes (tracer.ts) as their encoded KeyValue fields, made once each. */
const SHARED = new WeakMap<SharedAttributes, Uint8Array>();
/** A lowercase hex digit's character code to its value. */
const NIBBLE = new Uint8Array(128);
for (let i = 0; i < 16; i++) NIBBLE["0123456789abcdef".charCodeAt(i)] = i;

/**
 * One request's bytes in one growing buffer. A nested message reserves one byte for its length
 * and moves its content when the length needs more (rare: most are under 128 bytes).
 */
class Writer {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  /** `size`: the bytes expected, so a batch grows its buffer rarely. */
  constructor(size = 256) {
    this.#buf = new Uint8Array(size);
    this.#view = new DataView(this.#buf.buffer);
  }

  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const bigger = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    bigger.set(this.#buf.subarray(0, this.#pos));
    this.#buf = bigger;
    this.#view = new DataView(bigger.buffer);
  }

  /** A non-negative integer below 2^53 as a varint. */
  #varint(value: number): void {
    this.#room(10);
    let v = value;
    while (v >= 0x80) {
      this.#buf[this.#pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.#buf[this.#pos++] = v;
  }

  #tag(field: number, wire: number): void {
    this.#varint(field * 8 + wire);
  }

  varint(field: number, value: number): void {
    this.#tag(field, 0);
    if (value >= 0 && value <= Number.MAX_SAFE_INTEGER) return this.#varint(value);
    // A negative int64 is ten bytes of two's complement; rare enough for BigInt.
    let v = BigInt.asUintN(64, BigInt(value));
    this.#room(10);
    while (v >= 0x80n) {
      this.#buf[this.#pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#pos++] = Number(v);
  }

  string(field: number, value: string): void {
    this.#tag(field, 2);
    if (value.length < 128 && this.#ascii(value)) return;
    // At most 3 bytes per UTF-16 unit; the length is written once the text is in.
    this.#room(value.length * 3 + 5);
    const start = this.#pos;
    this.#pos += 1;
    const { written } = encoder.encodeInto(value, this.#buf.subarray(this.#pos));
    this.#pos += written;
    this.#close(start);
  }

  /**
   * A short ASCII string (ids, names, URLs: nearly every one) copied by hand: a length byte and
   * its bytes. TextEncoder.encodeInto is a call into the runtime per string under Deno, and at a
   * handful per span that was most of the export's cost (bench/RESULTS.md). False, and nothing
   * kept, at the first character past ASCII.
   */
  #ascii(value: string): boolean {
    const n = value.length;
    this.#room(n + 1);
    const buf = this.#buf;
    let p = this.#pos + 1;
    for (let i = 0; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) return false;
      buf[p++] = c;
    }
    buf[this.#pos] = n;
    this.#pos = p;
    return true;
  }

  /** A string from a small fixed set (attribute keys, span names): its bytes encoded once. */
  key(field: number, value: string): void {
    let bytes = KEYS.get(value);
    if (!bytes) {
      bytes = encoder.encode(value);
      if (KEYS.size < MAX_KEYS) KEYS.set(value, bytes);
    }
    this.#tag(field, 2);
    this.#varint(bytes.length);
    this.raw(bytes);
  }

  /** Bytes already encoded (whole fields). */
  raw(bytes: Uint8Array): void {
    this.#room(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  hex(field: number, value: string): void {
    this.#tag(field, 2);
    const length = value.length >> 1;
    this.#varint(length);
    this.#room(length);
    const buf = this.#buf;
    const start = this.#pos;
    for (let i = 0, c = 0; i < length; i++, c += 2) {
      buf[start + i] = (NIBBLE[value.charCodeAt(c)]! << 4) | NIBBLE[value.charCodeAt(c + 1)]!;
    }
    this.#pos = start + length;
  }

  /** Epoch ms (fractional) as fixed64 nanoseconds, exact, in two 32-bit halves. */
  nanos(field: number, ms: number): void {
    this.#tag(field, 1);
    this.#room(8);
    let whole = Math.floor(ms);
    let frac = Math.round((ms - whole) * 1e6);
    if (frac >= 1e6) {
      whole += 1;
      frac = 0;
    }
    // whole·10⁶ + frac passes 2^53: split whole at 2^32 so each product stays exact.
    const wholeLow = whole % TWO_32;
    const low = wholeLow * 1e6 + frac;
    const high = Math.floor(whole / TWO_32) * 1e6 + Math.floor(low / TWO_32);
    this.#view.setUint32(this.#pos, low % TWO_32, true);
    this.#view.setUint32(this.#pos + 4, high, true);
    this.#pos += 8;
  }

  double(field: number, value: number): void {
    this.#tag(field, 1);
    this.#room(8);
    this.#view.setFloat64(this.#pos, value, true);
    this.#pos += 8;
  }

  /** Starts a nested message; `close` it with the returned mark. */
  open(field: number): number {
    this.#tag(field, 2);
    this.#room(1);
    return this.#pos++;
  }

  /** Writes the length of the message opened at `mark`, moving it when one byte is too few. */
  close(mark: number): void {
    this.#close(mark);
  }

  #close(mark: number): void {
    const length = this.#pos - mark - 1;
    let extra = 0;
    for (let v = length; v >= 0x80; v = Math.floor(v / 0x80)) extra++;
    if (extra > 0) {
      this.#room(extra);
      this.#buf.copyWithin(mark + 1 + extra, mark + 1, this.#pos);
    }
    const end = this.#pos + extra;
    this.#pos = mark;
    this.#varint(length);
    this.#pos = end;
  }

  finish(): Uint8Array<ArrayBuffer> {
    return this.#buf.slice(0, this.#pos);
  }
}

/** KeyValue { key = 1; AnyValue value = 2 }; AnyValue string 1, bool 2, int64 3, double 4. */
function attributes(w: Writer, field: number, attrs: Record<string, AttributeValue>): void {
  for (const key in attrs) {
    const value = attrs[key]!;
    const kv = w.open(field);
    w.key(1, key);
    const any = w.open(2);
    if (typeof value === "string") w.string(1, value);
    else if (typeof value === "boolean") w.varint(2, value ? 1 : 0);
    else if (Number.isInteger(value)) w.varint(3, value);
    else w.double(4, value);
    w.close(any);
    w.close(kv);
  }
}

/** Shared attributes as span attribute fields (9), encoded at their first span. */
function sharedFields(shared: SharedAttributes): Uint8Array {
  let bytes = SHARED.get(shared);
  if (!bytes) {
    const w = new Writer();
    attributes(w, 9, shared.attributes);
    bytes = w.finish();
    SHARED.set(shared, bytes);
  }
  return bytes;
}

/** Span: ids 1, 2, 4; trace_state 3; name 5; kind 6; times 7, 8; attributes 9; links 13; status 15. */
function span(w: Writer, span: SpanData): void {
  const mark = w.open(2);
  w.hex(1, span.traceId);
  w.hex(2, span.spanId);
  if (span.traceState) w.string(3, span.traceState);
  if (span.parentSpanId) w.hex(4, span.parentSpanId);
  w.key(5, span.name);
  w.varint(6, span.kind);
  w.nanos(7, span.startMs);
  w.nanos(8, span.endMs);
  if (span.shared) w.raw(sharedFields(span.shared));
  attributes(w, 9, span.attributes);
  for (const link of span.links ?? []) {
    const l = w.open(13);
    w.hex(1, link.traceId);
    w.hex(2, link.spanId);
    w.close(l);
  }
  if (span.error !== undefined) {
    // Status { message = 2; code = 3 }: STATUS_CODE_ERROR is 2.
    const status = w.open(15);
    w.string(2, span.error);
    w.varint(3, 2);
    w.close(status);
  }
  w.close(mark);
}

/** The request body for `spans`: one ResourceSpans with one ScopeSpans. */
export function otlpProtobuf(
  resource: OtlpResource,
  spans: readonly SpanData[],
): Uint8Array<ArrayBuffer> {
  // ~200 bytes a span (ids, names, times, a few attributes).
  const w = new Writer(1024 + spans.length * 224);
  const resourceSpans = w.open(1);
  const res = w.open(1);
  attributes(w, 1, resource.attributes);
  w.close(res);
  const scopeSpans = w.open(2);
  const scope = w.open(1);
  w.string(1, resource.scopeName);
  w.string(2, resource.scopeVersion);
  w.close(scope);
  for (const s of spans) span(w, s);
  w.close(scopeSpans);
  w.close(resourceSpans);
  return w.finish();
}
