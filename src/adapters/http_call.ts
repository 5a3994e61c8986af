/**
 * One HTTP request to a downstream, with the timeout, error mapping and
 * metrics hook that the enrichment and validator clients share. Redirects are
 * never followed (lib/guarded_fetch.ts, docs/messages.md): a 3xx is a failed call. Bodies
 * are read up to a cap: 4 MiB for a 2xx, a 16 KiB prefix of anything else.
 */
import { HttpError, LocalError, RedirectError, TimeoutError } from "../lib/errors.ts";
import {
  discardBody,
  fetchNoRedirect,
  readTextCapped,
  readTextPrefix,
} from "../lib/guarded_fetch.ts";
import { describeNetworkFailure } from "../lib/network_failure.ts";
import { onAbort } from "../lib/on_abort.ts";
import { parseRetryAfter } from "../lib/retry.ts";
import { timeoutsOf } from "../lib/shared_timeouts.ts";
import type { Clock } from "../lib/clock.ts";
import { type SharedAttributes, SPAN_KIND, type Traced } from "../lib/tracer.ts";

export interface HttpCallOptions {
  /** Downstream name for errors and metrics, e.g. `enrichment`. */
  target: string;
  /** Per-request timeout, ms. */
  timeoutMs: number;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Durations, Retry-After dates (its wall clock) and the request timeout (its timers). */
  clock: Pick<Clock, "now" | "monotonic" | "timer">;
  /** Called once per request with the status code (or `timeout`, `network`) and its duration. */
  onResponse?: (code: string, durationMs: number) => void;
  /**
   * A 2xx answer's body is not needed (the validator's): cancelled instead of read, which
   * under Deno saves a read and a decode per message. Default false: the body is read.
   */
  discardOkBody?: boolean;
  /** Called for every 3xx answer, before RedirectError is thrown. */
  onRedirect?: (error: RedirectError) => void;
  /** A 2xx body longer than this is refused (HttpError, transient). Default 4 MiB. */
  maxBodyBytes?: number;
}

/** A 2xx answer's cap: a batch of 100 profiles is a few dozen KiB. */
const MAX_OK_BODY_BYTES = 4 * 1024 * 1024;
/** Any other answer is read this far: enough for a reason, never a flood. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;

export interface HttpAnswer {
  status: number;
  text: string;
  /** From `Retry-After`, when the server sent one with an answer other than 2xx. */
  retryAfterMs: number | undefined;
}

/**
 * Sends a request and reads the body (within its cap). Throws TimeoutError when
 * the per-request timeout fires, the caller's abort reason when `signal` aborts,
 * HttpError (status 0, transient) when the connection fails, RedirectError
 * (transient) for a 3xx, HttpError (transient) for a 2xx body over the cap, and
 * LocalError for a URL that cannot be requested at all. Any other status is
 * returned. Under `trace` the request is a client span and carries its `traceparent`.
 */
export async function httpCall(
  options: HttpCallOptions,
  url: string,
  init: RequestInit,
  signal?: AbortSignal,
  trace?: Traced,
): Promise<HttpAnswer> {
  const { clock } = options;
  const doFetch = options.fetch ?? fetch;
  // A timeout we cancel when the answer is in (AbortSignal.timeout's cannot be cancelled).
  const timer = new AbortController();
  const cancelTimeout = timeoutsOf(clock).onTimeout(options.timeoutMs, () => timer.abort());
  const timeout = timer.signal;
  // The caller's abort reaches the request through a watcher forgotten in `finally`
  // (lib/on_abort.ts): AbortSignal.any would build a dependent signal per request.
  const forget = signal && onAbort(signal, () => timer.abort(signal.reason));
  const started = clock.now();
  let code = "network";
  // The span's name is built only for a span that records.
  const span = trace?.span ? requestSpan(trace, options, init.method ?? "GET", url) : trace;
  try {
    const sent = span ? withTraceContext(init, span) : init;
    const response = await fetchNoRedirect(doFetch, options.target, url, sent, timeout);
    const status = response.status;
    const ok = status >= 200 && status < 300;
    const body = bodyOf(response, ok, options);
    const text = typeof body === "string" ? body : await body;
    code = String(status);
    // Only a failure's Retry-After means anything; a 2xx leaves its headers unbuilt (a
    // Headers object per response under Deno) unless its length must be read.
    const retryAfter = ok
      ? undefined
      : parseRetryAfter(response.headers.get("retry-after"), clock.now());
    return { status, text, retryAfterMs: retryAfter };
  } catch (error) {
    const failed = failureOf(error, options, url, signal, timeout);
    code = failed.code;
    throw failed.error;
  } finally {
    cancelTimeout();
    forget?.();
    if (code !== "local") options.onResponse?.(code, clock.now() - started);
    if (span?.span) endSpan(span, init.method ?? "GET", url, code);
  }
}

/** What a failed request throws, and the code its metrics get. */
function failureOf(
  error: unknown,
  options: HttpCallOptions,
  url: string,
  signal: AbortSignal | undefined,
  timeout: AbortSignal,
): { code: string; error: unknown } {
  if (error instanceof HttpError) {
    // A redirect or an answer too long to read: the downstream answered, with this status.
    if (error instanceof RedirectError) options.onRedirect?.(error);
    return { code: String(error.status), error };
  }
  if (signal?.aborted) return { code: "network", error: signal.reason };
  if (!URL.canParse(url)) {
    // Our own fault (config or id encoding), not the downstream's: no breaker may count it.
    const local = new LocalError(
      `Cannot call ${options.target}: received an invalid URL, expected an absolute URL`,
    );
    return { code: "local", error: local };
  }
  if (timeout.aborted) {
    const host = new URL(url).host;
    const timedOut = new TimeoutError(options.target, options.timeoutMs, { cause: error, host });
    return { code: "timeout", error: timedOut };
  }
  const failure = new HttpError(options.target, 0, describeNetworkFailure(error, url), {
    category: "TRANSIENT",
    cause: error,
  });
  return { code: "network", error: failure };
}

/** The request with the span's W3C headers beside its own (a plain headers object). */
function withTraceContext(init: RequestInit, span: Traced): RequestInit {
  const headers: Record<string, string> = {
    ...init.headers as Record<string, string> | undefined,
    traceparent: span.traceparent,
  };
  if (span.traceState) headers.tracestate = span.traceState;
  return { ...init, headers };
}

/** A request's name and method-and-URL attributes, kept while the calls repeat them. */
interface RequestShape {
  method: string;
  url: string;
  name: string;
  shared: SharedAttributes;
}

/** Per client (its options): the shape of its last request; a validator's never changes. */
const SHAPES = new WeakMap<HttpCallOptions, RequestShape>();

/** The client span of one request, with the attributes it shares with the client's others. */
function requestSpan(trace: Traced, options: HttpCallOptions, method: string, url: string) {
  let shape = SHAPES.get(options);
  if (!shape || shape.url !== url || shape.method !== method) {
    const attributes = { "http.request.method": method, "url.full": url };
    shape = { method, url, name: `${method} ${options.target}`, shared: { attributes } };
    SHAPES.set(options, shape);
  }
  const span = trace.child(shape.name, SPAN_KIND.client);
  span.share(shape.shared);
  return span;
}

/** The client span's status attributes (OpenTelemetry HTTP conventions), ended. */
function endSpan(span: Traced, method: string, url: string, code: string): void {
  const status = Number(code);
  if (Number.isInteger(status)) span.set("http.response.status_code", status);
  if (!(status >= 200 && status < 300)) {
    span.set("error.type", code);
    span.fail(`${method} ${url}: ${code}`);
  }
  span.end();
}

/**
 * The body within its cap: a failure's prefix, a 2xx whole, or "" when it is not needed (a
 * stream cancelled, not waited for; a body in memory just dropped, with no promise to make).
 */
function bodyOf(
  response: Response,
  ok: boolean,
  options: HttpCallOptions,
): string | Promise<string> {
  if (!ok) return readTextPrefix(response, MAX_ERROR_BODY_BYTES);
  if (!options.discardOkBody) {
    return readTextCapped(response, options.target, options.maxBodyBytes ?? MAX_OK_BODY_BYTES);
  }
  discardBody(response)?.catch(() => {});
  return "";
}
