/**
 * Spans, as cheap as the export allows (docs/tracing.md). Every trace has ids and a
 * `traceparent` to pass on; only a sampled trace with an exporter behind it records a span
 * (its attributes, times and links), so with export off a message costs one string and this
 * object.
 */
import type { Clock } from "./clock.ts";
import {
  formatTraceparent,
  newSpanId,
  newTraceparent,
  type RemoteContext,
  spanIdOf,
  traceIdOf,
  unsampled,
} from "./trace_context.ts";
import type { Sampler } from "./trace_sampler.ts";

/** OTLP's SpanKind numbers. */
export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;
export type SpanKind = typeof SPAN_KIND[keyof typeof SPAN_KIND];

export type AttributeValue = string | number | boolean;

/**
 * Attributes many spans carry alike (a queue's messaging attributes): one object for all of
 * them, which the exporter encodes once (adapters/otlp_protobuf.ts).
 */
export interface SharedAttributes {
  readonly attributes: Readonly<Record<string, AttributeValue>>;
}

/** A finished span, as the exporter encodes it. Times are wall-clock epoch ms (fractional). */
export interface SpanData {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  traceState: string | undefined;
  name: string;
  kind: SpanKind;
  startMs: number;
  endMs: number;
  attributes: Record<string, AttributeValue>;
  /** Attributes shared with other spans, beside its own. */
  shared: SharedAttributes | undefined;
  /** Set: the span failed (OTLP status ERROR with this message). */
  error: string | undefined;
  links: Array<{ traceId: string; spanId: string }> | undefined;
}

/** Where finished spans go (the exporter's bounded queue); it never throws or blocks. */
export interface SpanSink {
  add(span: SpanData): void;
}

export interface TracerOptions {
  sampler: Sampler;
  /** Ids from `random`; span times from `monotonic`, placed on the wall clock once, at start. */
  clock: Pick<Clock, "now" | "monotonic" | "random">;
  /** Undefined: propagation only, nothing recorded. */
  sink?: SpanSink | undefined;
}

/**
 * One span's context, recording or not. A context that does not record hands itself out as
 * its own children, so a request under it carries the message's traceparent at no cost.
 */
export class Traced {
  readonly sampled: boolean;
  readonly traceState: string | undefined;
  /** The span being recorded; undefined when not sampled or not exported. */
  readonly span: SpanData | undefined;
  readonly #tracer: Tracer | undefined;
  /** Written at once when nothing records; a recorded span's is built if a request needs it. */
  #traceparent: string | undefined;

  /** Positional, so a context that records nothing costs this one object. */
  constructor(
    traceparent: string | undefined,
    traceState: string | undefined,
    recording?: { span: SpanData; tracer: Tracer },
  ) {
    this.#traceparent = traceparent;
    this.sampled = recording !== undefined || traceparent?.charCodeAt(54) === 49;
    this.traceState = traceState;
    this.span = recording?.span;
    this.#tracer = recording?.tracer;
  }

  /** The W3C header naming this span as the parent. */
  get traceparent(): string {
    return this.#traceparent ??= formatTraceparent(this.traceId, this.spanId, this.sampled);
  }

  get traceId(): string {
    return this.span?.traceId ?? traceIdOf(this.#traceparent!);
  }

  get spanId(): string {
    return this.span?.spanId ?? spanIdOf(this.#traceparent!);
  }

  /** Gives the span attributes it shares with others (only a recorded span keeps them). */
  share(shared: SharedAttributes): void {
    if (this.span) this.span.shared = shared;
  }

  /** A child span (recorded when this one is); this context itself when nothing records. */
  child(name: string, kind: SpanKind): Traced {
    return this.span && this.#tracer ? this.#tracer.childOf(this, name, kind) : this;
  }

  set(key: string, value: AttributeValue): void {
    if (this.span) this.span.attributes[key] = value;
  }

  fail(message: string): void {
    if (this.span) this.span.error = message.slice(0, 256);
  }

  /** Ends the span (once): from then on it is the exporter's. */
  end(): void {
    const span = this.span;
    if (!span || span.endMs !== 0 || !this.#tracer) return;
    this.#tracer.finish(span);
  }
}

export class Tracer {
  readonly #options: TracerOptions;
  /** Wall-clock ms minus monotonic ms, read once: span times never step with the wall clock. */
  readonly #offset: number;

  constructor(options: TracerOptions) {
    this.#options = options;
    this.#offset = options.clock.now() - options.clock.monotonic();
  }

  /** Whether spans are recorded at all (an exporter is set). */
  get exporting(): boolean {
    return this.#options.sink !== undefined;
  }

  /**
   * A span continuing `parent` (the incoming context), or the root of a new trace, started at
   * `startMonotonic` (default now). It records when sampled and exported.
   */
  begin(
    parent: RemoteContext | undefined,
    name: string,
    kind: SpanKind,
    startMonotonic?: number,
  ): Traced {
    const { sampler, clock, sink } = this.#options;
    let traceparent = newTraceparent(clock.random, parent?.traceId);
    const traceId = parent?.traceId ?? traceIdOf(traceparent);
    const sampled = sampler(traceId, parent?.spanId === undefined ? undefined : parent.sampled);
    if (!sampled) traceparent = unsampled(traceparent);
    const traceState = parent?.traceState;
    if (!sampled || !sink) return new Traced(traceparent, traceState);
    const start = (startMonotonic ?? clock.monotonic()) + this.#offset;
    const ids = { traceId, spanId: spanIdOf(traceparent), traceState };
    const span = spanData(ids, parent?.spanId, name, kind, start);
    return new Traced(traceparent, traceState, { span, tracer: this });
  }

  /** The root of a new trace linked to each of `links` (a batch serving several messages). */
  linked(name: string, kind: SpanKind, links: readonly Traced[]): Traced {
    const root = this.begin(undefined, name, kind);
    if (root.span) {
      root.span.links = links.map((link) => ({ traceId: link.traceId, spanId: link.spanId }));
    }
    return root;
  }

  /** A recorded child of a recorded span (Traced.child). */
  childOf(parent: Traced, name: string, kind: SpanKind): Traced {
    const clock = this.#options.clock;
    const ids = {
      traceId: parent.traceId,
      spanId: newSpanId(clock.random),
      traceState: parent.traceState,
    };
    const span = spanData(ids, parent.spanId, name, kind, clock.monotonic() + this.#offset);
    return new Traced(undefined, ids.traceState, { span, tracer: this });
  }

  /** Stamps the end and hands the span to the sink. */
  finish(span: SpanData): void {
    span.endMs = Math.max(span.startMs, this.#options.clock.monotonic() + this.#offset);
    this.#options.sink?.add(span);
  }
}

function spanData(
  ids: { traceId: string; spanId: string; traceState: string | undefined },
  parentSpanId: string | undefined,
  name: string,
  kind: SpanKind,
  startMs: number,
): SpanData {
  return {
    traceId: ids.traceId,
    spanId: ids.spanId,
    parentSpanId,
    traceState: ids.traceState,
    name,
    kind,
    startMs,
    endMs: 0,
    attributes: {},
    shared: undefined,
    error: undefined,
    links: undefined,
  };
}

/** The `trace_id` / `span_id` fields of a log line about the message `trace` follows. */
export function traceFields(trace: Traced | undefined): { trace_id?: string; span_id?: string } {
  return trace ? { trace_id: trace.traceId, span_id: trace.spanId } : {};
}
