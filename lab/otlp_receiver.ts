/**
 * A local OTLP/HTTP traces receiver for the lab and the tests: it takes `POST /v1/traces` in
 * `http/protobuf` or `http/json` and decodes each with protobufjs and the official
 * opentelemetry-proto definitions (lab/otlp_proto), never with sluice's own encoders. It can be
 * made slow or failing, to show that a bad receiver costs no message.
 */
import protobuf from "protobufjs";
import { serveLocal } from "./local_server.ts";

/** A span as the official definitions decode it; ids and times as hex and decimal strings. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, string | number | boolean>;
  links: Array<{ traceId: string; spanId: string }>;
  status: { code: number; message: string };
}

export interface ReceivedExport {
  contentType: string;
  resource: Record<string, string | number | boolean>;
  scope: { name: string; version: string };
  spans: ReceivedSpan[];
}

export interface OtlpReceiver {
  /** Base URL: give it as OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  /** Every export so far, decoded. */
  readonly exports: ReceivedExport[];
  /** Every span received so far. */
  spans(): ReceivedSpan[];
  /** Requests answered (any status). */
  requests: number;
  /** `ok` answers 200; `fail` 503; `stall` holds each request until `ok` or close. */
  mode: "ok" | "fail" | "stall";
  /** Request headers of the last export (lower-case names). */
  lastHeaders: Record<string, string>;
  close(): Promise<void>;
}

const PROTO_DIR = new URL("./otlp_proto/", import.meta.url).pathname;
let root: protobuf.Root | undefined;

/** ExportTraceServiceRequest from the official definitions. */
export function exportRequestType(): protobuf.Type {
  if (!root) {
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) => PROTO_DIR + target;
    root.loadSync("opentelemetry/proto/collector/trace/v1/trace_service.proto");
  }
  return root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");
}

const hex = (bytes: Uint8Array | undefined) =>
  bytes ? Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("") : "";

type Plain = Record<string, unknown>;

function anyValueOf(value: Plain | undefined): string | number | boolean {
  if (!value) return "";
  if (value.stringValue !== undefined) return value.stringValue as string;
  if (value.boolValue !== undefined) return value.boolValue as boolean;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue as number;
  return "";
}

function attributesOf(list: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of (list ?? []) as Plain[]) out[kv.key as string] = anyValueOf(kv.value as Plain);
  return out;
}

/** A decoded message (protobufjs plain object, bytes as Uint8Array, longs as strings) read. */
function readExport(message: Plain, contentType: string, idsOf: (v: unknown) => string) {
  const out: ReceivedExport[] = [];
  for (const rs of (message.resourceSpans ?? []) as Plain[]) {
    const resource = attributesOf((rs.resource as Plain | undefined)?.attributes);
    for (const ss of (rs.scopeSpans ?? []) as Plain[]) {
      const scope = (ss.scope ?? {}) as Plain;
      const spans = ((ss.spans ?? []) as Plain[]).map((s): ReceivedSpan => ({
        traceId: idsOf(s.traceId),
        spanId: idsOf(s.spanId),
        parentSpanId: idsOf(s.parentSpanId),
        traceState: String(s.traceState ?? ""),
        name: String(s.name ?? ""),
        kind: Number(s.kind ?? 0),
        startTimeUnixNano: String(s.startTimeUnixNano ?? "0"),
        endTimeUnixNano: String(s.endTimeUnixNano ?? "0"),
        attributes: attributesOf(s.attributes),
        links: ((s.links ?? []) as Plain[]).map((l) => ({
          traceId: idsOf(l.traceId),
          spanId: idsOf(l.spanId),
        })),
        status: {
          code: Number((s.status as Plain | undefined)?.code ?? 0),
          message: String((s.status as Plain | undefined)?.message ?? ""),
        },
      }));
      out.push({
        contentType,
        resource,
        scope: { name: String(scope.name ?? ""), version: String(scope.version ?? "") },
        spans,
      });
    }
  }
  return out;
}

const TO_OBJECT = { longs: String, enums: Number, defaults: false, arrays: true } as const;

/**
 * One request body decoded. Protobuf: `decode` by the official definitions. JSON: the OTLP JSON
 * mapping differs from protobuf's canonical JSON only in hex ids; the body goes through the
 * official definitions' `fromObject` with the id fields set aside (a field name the definitions
 * do not know is dropped there, and so missing here), the ids read as hex.
 */
export function decodeExport(body: Uint8Array, contentType: string): ReceivedExport[] {
  const type = exportRequestType();
  if (contentType.startsWith("application/x-protobuf")) {
    const message = type.toObject(type.decode(body), TO_OBJECT) as Plain;
    return readExport(message, contentType, (v) => hex(v as Uint8Array | undefined));
  }
  const json = JSON.parse(new TextDecoder().decode(body)) as Plain;
  const ids = new Map<string, string>();
  let next = 0;
  const swapIds = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(swapIds);
    if (value === null || typeof value !== "object") return value;
    const out: Plain = {};
    for (const [key, field] of Object.entries(value as Plain)) {
      if (/^(traceId|spanId|parentSpanId)$/.test(key) && typeof field === "string") {
        // Placeholder bytes stand for the id while the definitions read the rest.
        const token = String(next++).padStart(8, "0");
        ids.set(token, field);
        out[key] = btoa(token);
      } else out[key] = swapIds(field);
    }
    return out;
  };
  const message = type.toObject(type.fromObject(swapIds(json) as Plain), TO_OBJECT) as Plain;
  const decoder = new TextDecoder();
  return readExport(
    message,
    contentType,
    (v) => v ? ids.get(decoder.decode(v as Uint8Array)) ?? "" : "",
  );
}

/** Starts a receiver on 127.0.0.1. */
export function startOtlpReceiver(): OtlpReceiver {
  const closing = new AbortController();
  // Bodies are decoded when they are looked at, not as they come: during a lab run the decoding
  // would take the CPU the measured worker shares with the lab.
  const bodies: Array<{ body: Uint8Array; contentType: string }> = [];
  const decoded: ReceivedExport[] = [];
  const exports = () => {
    for (const { body, contentType } of bodies.splice(0)) {
      decoded.push(...decodeExport(body, contentType));
    }
    return decoded;
  };
  const receiver: OtlpReceiver = {
    url: "",
    get exports() {
      return exports();
    },
    spans: () => exports().flatMap((e) => e.spans),
    requests: 0,
    mode: "ok",
    lastHeaders: {},
    close: () => Promise.resolve(),
  };
  const server = serveLocal(async (request) => {
    const body = new Uint8Array(await request.arrayBuffer());
    receiver.lastHeaders = Object.fromEntries(request.headers);
    while (receiver.mode === "stall" && !closing.signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    receiver.requests++;
    if (new URL(request.url).pathname !== "/v1/traces") {
      return new Response("not found", { status: 404 });
    }
    if (receiver.mode === "fail" || closing.signal.aborted) {
      return new Response("unavailable", { status: 503 });
    }
    bodies.push({ body, contentType: request.headers.get("content-type") ?? "" });
    return Response.json({});
  }, closing);
  receiver.url = server.url;
  receiver.close = server.close;
  return receiver;
}

/** Messages whose span arrived with every child its trace names (children by parent span id). */
export function wholeTraces(
  spans: readonly ReceivedSpan[],
  isMessage: (span: ReceivedSpan) => boolean,
  childrenNeeded: (message: ReceivedSpan) => readonly string[],
): { messages: number; whole: number } {
  const byParent = new Map<string, ReceivedSpan[]>();
  for (const span of spans) {
    if (!span.parentSpanId) continue;
    const list = byParent.get(span.parentSpanId) ?? [];
    list.push(span);
    byParent.set(span.parentSpanId, list);
  }
  let messages = 0;
  let whole = 0;
  for (const span of spans) {
    if (!isMessage(span)) continue;
    messages++;
    const names = new Set((byParent.get(span.spanId) ?? []).map((c) => c.name));
    if (childrenNeeded(span).every((name) => names.has(name))) whole++;
  }
  return { messages, whole };
}
