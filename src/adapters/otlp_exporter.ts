/**
 * Finished spans to an OTLP/HTTP receiver (docs/tracing.md): a bounded queue that drops (and
 * counts) rather than blocks, batches sent one at a time on a timer or when full, through the
 * redirect-refusing fetch. A failed export loses its spans, counted, and nothing else: the
 * pipeline only ever calls `add`, which never waits and never throws.
 */
import type { Clock } from "../lib/clock.ts";
import { HttpError, TimeoutError } from "../lib/errors.ts";
import { fetchNoRedirect, readTextPrefix } from "../lib/guarded_fetch.ts";
import type { SpanData, SpanSink } from "../lib/tracer.ts";
import { otlpJson, type OtlpResource } from "./otlp_json.ts";
import { otlpProtobuf } from "./otlp_protobuf.ts";

export type OtlpProtocol = "http/json" | "http/protobuf";

export interface OtlpExporterOptions {
  /** The traces URL (`…/v1/traces`). */
  url: string;
  protocol: OtlpProtocol;
  /** OTEL_EXPORTER_OTLP_HEADERS (authentication). */
  headers: Record<string, string>;
  /** Per export request, ms (OTEL_EXPORTER_OTLP_TIMEOUT). */
  timeoutMs: number;
  resource: OtlpResource;
  /** Spans held at most; more are dropped (OTEL_BSP_MAX_QUEUE_SIZE). */
  maxQueueSize: number;
  /** Spans per request (OTEL_BSP_MAX_EXPORT_BATCH_SIZE). */
  maxBatchSize: number;
  /** How long a partial batch waits, ms (OTEL_BSP_SCHEDULE_DELAY). */
  scheduleDelayMs: number;
  fetch: typeof fetch;
  clock: Pick<Clock, "timer">;
  /** Spans lost: the queue was full, or their export failed. */
  onDropped: (count: number, reason: "queue_full" | "export_failed") => void;
  /** An export that failed (for a rate-limited warning). */
  onError: (error: unknown) => void;
}

/** How much of a failed export's answer is read, for its error. */
const MAX_ERROR_BODY = 1024;

export class OtlpExporter implements SpanSink {
  readonly #options: OtlpExporterOptions;
  #queue: SpanData[] = [];
  #sending: Promise<void> | undefined;
  #cancelTimer: (() => void) | undefined;
  readonly #stop = new AbortController();

  constructor(options: OtlpExporterOptions) {
    this.#options = options;
  }

  /** Queues a finished span; drops it (counted) when the queue is full. */
  add(span: SpanData): void {
    const { maxQueueSize, maxBatchSize } = this.#options;
    if (this.#queue.length >= maxQueueSize) return this.#options.onDropped(1, "queue_full");
    this.#queue.push(span);
    if (this.#queue.length >= maxBatchSize) this.#kick();
    else {this.#cancelTimer ??= this.#options.clock.timer(this.#options.scheduleDelayMs, () => {
        this.#cancelTimer = undefined;
        this.#kick();
      });}
  }

  /** Spans queued now. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Sends everything queued, and resolves when the queue is empty or `signal` aborts (the
   * shutdown's flush time is over); then a request on the wire is abandoned.
   */
  async flush(signal?: AbortSignal): Promise<void> {
    const abandon = () => this.#stop.abort();
    signal?.addEventListener("abort", abandon, { once: true });
    try {
      while (
        !signal?.aborted && !this.#stop.signal.aborted && (this.#queue.length > 0 || this.#sending)
      ) {
        this.#kick();
        await this.#sending;
      }
    } finally {
      signal?.removeEventListener("abort", abandon);
    }
  }

  /** Stops the timer; what is still queued stays unsent. */
  close(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#stop.abort();
  }

  /** Starts the next batch unless one is on the wire; the batch after it follows on its own. */
  #kick(): void {
    if (this.#sending || this.#queue.length === 0 || this.#stop.signal.aborted) return;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    const batch = this.#queue.splice(0, this.#options.maxBatchSize);
    this.#sending = this.#send(batch).finally(() => {
      this.#sending = undefined;
      if (this.#queue.length >= this.#options.maxBatchSize) this.#kick();
      else if (this.#queue.length > 0 && !this.#stop.signal.aborted) {
        this.#cancelTimer ??= this.#options.clock.timer(this.#options.scheduleDelayMs, () => {
          this.#cancelTimer = undefined;
          this.#kick();
        });
      }
    });
  }

  async #send(batch: SpanData[]): Promise<void> {
    const o = this.#options;
    const json = o.protocol === "http/json";
    const body = json ? otlpJson(o.resource, batch) : otlpProtobuf(o.resource, batch);
    const timer = new AbortController();
    const cancel = o.clock.timer(o.timeoutMs, () => timer.abort());
    const abandon = () => timer.abort();
    this.#stop.signal.addEventListener("abort", abandon, { once: true });
    try {
      const response = await fetchNoRedirect(o.fetch, "otlp", o.url, {
        method: "POST",
        headers: {
          ...o.headers,
          "content-type": json ? "application/json" : "application/x-protobuf",
        },
        body,
      }, timer.signal);
      const text = await readTextPrefix(response, MAX_ERROR_BODY);
      if (response.status < 200 || response.status > 299) {
        throw new HttpError("otlp", response.status, text.slice(0, 200), {
          category: "TRANSIENT",
        });
      }
    } catch (error) {
      o.onDropped(batch.length, "export_failed");
      const timedOut = timer.signal.aborted && !(error instanceof HttpError);
      o.onError(timedOut ? new TimeoutError("otlp", o.timeoutMs, { cause: error }) : error);
    } finally {
      cancel();
      this.#stop.signal.removeEventListener("abort", abandon);
    }
  }
}
