/**
 * Trace context as it travels (docs/tracing.md): the W3C `traceparent` / `tracestate` pair and
 * the X-Ray `AWSTraceHeader` read, ids drawn, a `traceparent` written. Pure: a value that does
 * not parse is no context at all, never an error (a message is never poison for its trace).
 */

/** A parent span as a carrier names it. */
export interface RemoteContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero; undefined when X-Ray sent only a root. */
  spanId: string | undefined;
  /** The sampled flag; undefined when the carrier left the decision open (X-Ray `Sampled=?`). */
  sampled: boolean | undefined;
  /** W3C tracestate, passed on as received (within its limits). */
  traceState?: string | undefined;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "00000000000000000000000000000000";
const ZERO_SPAN = "0000000000000000";
/** The W3C limit: 32 list members of at most 256 characters each, with separators. */
const MAX_TRACESTATE = 512;

/**
 * A W3C `traceparent` (version 00 exactly; a later version by its first four fields), or
 * undefined. Version ff, all-zero ids and uppercase hex are invalid, as the spec says.
 */
export function parseTraceparent(
  value: string | undefined,
  traceState?: string,
): RemoteContext | undefined {
  if (value === undefined || value.length < 55) return undefined;
  const match = TRACEPARENT.exec(value.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  const state = traceState?.trim();
  return {
    traceId: traceId!,
    spanId: spanId!,
    sampled: (parseInt(flags!, 16) & 1) === 1,
    traceState: state && state.length <= MAX_TRACESTATE ? state : undefined,
  };
}

const XRAY_ROOT = /^1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})$/;
const HEX16 = /^[0-9a-fA-F]{16}$/;

/**
 * An X-Ray trace header (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;
 * Sampled=1`): the root's time and random parts make the trace id, `Parent` the parent span.
 * Undefined without a valid root.
 */
export function parseAwsTraceHeader(value: string | undefined): RemoteContext | undefined {
  if (value === undefined || value.length > 1024) return undefined;
  let root: string | undefined;
  let parent: string | undefined;
  let sampled: string | undefined;
  for (const part of value.split(";")) {
    const eq = part.indexOf("=");
    const key = part.slice(0, eq).trim();
    const field = part.slice(eq + 1).trim();
    if (key === "Root") root = field;
    else if (key === "Parent") parent = field;
    else if (key === "Sampled") sampled = field;
  }
  const match = root === undefined ? null : XRAY_ROOT.exec(root);
  if (!match) return undefined;
  const traceId = (match[1]! + match[2]!).toLowerCase();
  if (traceId === ZERO_TRACE) return undefined;
  const spanId = parent !== undefined && HEX16.test(parent) && parent !== ZERO_SPAN
    ? parent.toLowerCase()
    : undefined;
  return {
    traceId,
    spanId,
    sampled: sampled === "1" ? true : sampled === "0" ? false : undefined,
  };
}

/** SQS message attributes as the flow sees them. */
export type TraceAttributes = Record<string, { StringValue?: string } | undefined>;

/**
 * A message's incoming context: its `traceparent` (with `tracestate`) message attribute, else the
 * `AWSTraceHeader` system attribute, else the `traceparent` of the SNS envelope its body came in
 * (`envelope`: those attributes, when there was one). An invalid carrier counts as absent, so a
 * bad `traceparent` falls through to a good `AWSTraceHeader`.
 */
export function incomingContext(
  messageAttributes: TraceAttributes,
  systemAttributes: Record<string, string | undefined>,
  envelope?: TraceAttributes,
): RemoteContext | undefined {
  const own = w3cOf(messageAttributes);
  if (own) return own;
  const xray = systemAttributes.AWSTraceHeader;
  const aws = xray === undefined ? undefined : parseAwsTraceHeader(xray);
  return aws ?? (envelope ? w3cOf(envelope) : undefined);
}

function w3cOf(attributes: TraceAttributes): RemoteContext | undefined {
  const traceparent = attributes.traceparent?.StringValue;
  if (traceparent === undefined) return undefined;
  return parseTraceparent(traceparent, attributes.tracestate?.StringValue);
}

/** Hex digits' char codes by byte: two per byte. */
const HEX_CODES = new Uint8Array(512);
for (let byte = 0; byte < 256; byte++) {
  const hex = byte.toString(16).padStart(2, "0");
  HEX_CODES[2 * byte] = hex.charCodeAt(0);
  HEX_CODES[2 * byte + 1] = hex.charCodeAt(1);
}

/** Char codes of the header being written: `00-` trace `-` span `-` flags (55). */
const CODES: number[] = Array.from(
  "00-" + ZERO_TRACE + "-" + ZERO_SPAN + "-01",
  (c) => c.charCodeAt(0),
);
const TRACE_AT = 3;
const SPAN_AT = 36;

/** The trace id of a traceparent this module wrote. */
export function traceIdOf(traceparent: string): string {
  return traceparent.slice(TRACE_AT, TRACE_AT + 32);
}

/** The span id of a traceparent this module wrote. */
export function spanIdOf(traceparent: string): string {
  return traceparent.slice(SPAN_AT, SPAN_AT + 16);
}

/** The same header with its sampled flag cleared. */
export function unsampled(traceparent: string): string {
  return traceparent.slice(0, 54) + "0";
}

/** Char codes of a span id alone. */
const SPAN_CODES: number[] = new Array(16).fill(48);

/** A draw of `random` ([0, 1)) as 8 hex digits at `at` of `codes`; whether the word was zero. */
function writeWord(random: () => number, at: number, codes = CODES): boolean {
  const word = Math.floor(random() * 0x1_0000_0000) >>> 0;
  for (let shift = 24, i = at; shift >= 0; shift -= 8, i += 2) {
    const byte = (word >>> shift) & 255;
    codes[i] = HEX_CODES[2 * byte]!;
    codes[i + 1] = HEX_CODES[2 * byte + 1]!;
  }
  return word === 0;
}

/** A span id (16 hex digits, never all zero) at `at` of `codes`. */
function writeSpanId(random: () => number, at: number, codes: number[]): void {
  const high = writeWord(random, at, codes);
  const low = writeWord(random, at + 8, codes);
  if (high && low) codes[at + 15] = 49;
}

/**
 * A sampled W3C `traceparent` for a new span (`00-{trace}-{span}-01`; `unsampled` clears the
 * flag): in trace `traceId` (32 lowercase hex digits), else a new trace, with a new span id, both
 * drawn from `random` and never all zero. Written as one string, not joined from pieces: a
 * message keeps it for its whole life, and joined ids would keep every piece alive with it.
 */
export function newTraceparent(random: () => number, traceId?: string): string {
  if (traceId === undefined) {
    let zero = true;
    for (let w = 0; w < 4; w++) zero = writeWord(random, TRACE_AT + 8 * w) && zero;
    if (zero) CODES[TRACE_AT + 31] = 49;
  } else {
    for (let i = 0; i < 32; i++) CODES[TRACE_AT + i] = traceId.charCodeAt(i);
  }
  writeSpanId(random, SPAN_AT, CODES);
  return String.fromCharCode.apply(null, CODES);
}

/** A span id alone (16 hex digits, never all zero), for a span whose header may never be sent. */
export function newSpanId(random: () => number): string {
  writeSpanId(random, 0, SPAN_CODES);
  return String.fromCharCode.apply(null, SPAN_CODES);
}

/** `00-{trace}-{span}-{01|00}`. */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`;
}
