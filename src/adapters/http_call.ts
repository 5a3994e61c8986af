/**
 * One HTTP request to a downstream, with the timeout, error mapping and
 * metrics hook that the enrichment and validator clients share.
 */
import { HttpError, TimeoutError } from "../lib/errors.ts";
import { parseRetryAfter } from "../lib/retry.ts";

export interface HttpCallOptions {
  /** Downstream name for errors and metrics, e.g. `enrichment`. */
  target: string;
  /** Per-request timeout, ms. */
  timeoutMs: number;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Default: Date.now. */
  now?: () => number;
  /** Called once per request with the status code (or `timeout`, `network`) and its duration. */
  onResponse?: (code: string, durationMs: number) => void;
}

export interface HttpAnswer {
  status: number;
  text: string;
  /** From `Retry-After`, when the server sent one. */
  retryAfterMs: number | undefined;
}

/**
 * Sends a request and reads the whole body. Throws TimeoutError when the
 * per-request timeout fires, the caller's abort reason when `signal` aborts, and
 * HttpError (status 0, transient) when the connection fails. Any status is returned.
 */
export async function httpCall(
  options: HttpCallOptions,
  url: string,
  init: RequestInit,
  signal?: AbortSignal,
): Promise<HttpAnswer> {
  const now = options.now ?? Date.now;
  const doFetch = options.fetch ?? fetch;
  // A timer we clear when the answer is in (AbortSignal.timeout's cannot be cancelled).
  const timer = new AbortController();
  const handle = setTimeout(() => timer.abort(), options.timeoutMs);
  const timeout = timer.signal;
  // The caller's abort reaches the request through a listener removed in `finally`:
  // AbortSignal.any would build a dependent signal (weak references, GC work) per request.
  const forward = () => timer.abort(signal?.reason);
  signal?.addEventListener("abort", forward, { once: true });
  if (signal?.aborted) forward();
  const started = now();
  let code = "network";
  try {
    const response = await doFetch(url, { ...init, signal: timeout });
    const text = await response.text();
    code = String(response.status);
    return {
      status: response.status,
      text,
      retryAfterMs: parseRetryAfter(response.headers.get("retry-after"), now()),
    };
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (timeout.aborted) {
      code = "timeout";
      throw new TimeoutError(options.target, options.timeoutMs, { cause: error });
    }
    throw new HttpError(options.target, 0, (error as Error).message ?? String(error), {
      category: "TRANSIENT",
      cause: error,
    });
  } finally {
    clearTimeout(handle);
    signal?.removeEventListener("abort", forward);
    options.onResponse?.(code, now() - started);
  }
}
