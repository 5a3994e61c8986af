/**
 * One HTTP request to a downstream, with the timeout, error mapping and
 * metrics hook that the enrichment and validator clients share. Redirects are
 * never followed (lib/guarded_fetch.ts, docs/messages.md): a 3xx is a failed call. Bodies
 * are read up to a cap: 4 MiB for a 2xx, a 16 KiB prefix of anything else.
 */
import { HttpError, LocalError, RedirectError, TimeoutError } from "../lib/errors.ts";
import { fetchNoRedirect, readTextCapped, readTextPrefix } from "../lib/guarded_fetch.ts";
import { onAbort } from "../lib/on_abort.ts";
import { parseRetryAfter } from "../lib/retry.ts";
import { onTimeout } from "../lib/shared_timeouts.ts";

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

/** The last URL found parsable: the validator's is the same for every message. */
let lastParsed = "";

/**
 * Sends a request and reads the body (within its cap). Throws TimeoutError when
 * the per-request timeout fires, the caller's abort reason when `signal` aborts,
 * HttpError (status 0, transient) when the connection fails, RedirectError
 * (transient) for a 3xx, HttpError (transient) for a 2xx body over the cap, and
 * LocalError for a URL that cannot be requested at all. Any other status is
 * returned.
 */
export async function httpCall(
  options: HttpCallOptions,
  url: string,
  init: RequestInit,
  signal?: AbortSignal,
): Promise<HttpAnswer> {
  const now = options.now ?? Date.now;
  const doFetch = options.fetch ?? fetch;
  if (url !== lastParsed && !URL.canParse(url)) {
    // Our own fault (config or id encoding), not the downstream's: no breaker may count it.
    throw new LocalError(
      `Cannot call ${options.target}: received an invalid URL, expected an absolute URL`,
    );
  }
  lastParsed = url;
  // A timeout we cancel when the answer is in (AbortSignal.timeout's cannot be cancelled).
  const timer = new AbortController();
  const cancelTimeout = onTimeout(options.timeoutMs, () => timer.abort());
  const timeout = timer.signal;
  // The caller's abort reaches the request through a watcher forgotten in `finally`
  // (lib/on_abort.ts): AbortSignal.any would build a dependent signal per request.
  const forget = signal && onAbort(signal, () => timer.abort(signal.reason));
  const started = now();
  let code = "network";
  try {
    const response = await fetchNoRedirect(doFetch, options.target, url, init, timeout);
    const status = response.status;
    const ok = status >= 200 && status < 300;
    let text = "";
    if (!ok) text = await readTextPrefix(response, MAX_ERROR_BODY_BYTES);
    else if (!options.discardOkBody) {
      text = await readTextCapped(
        response,
        options.target,
        options.maxBodyBytes ?? MAX_OK_BODY_BYTES,
      );
    } else await response.body?.cancel();
    code = String(status);
    // Only a failure's Retry-After means anything; a 2xx leaves its headers unbuilt (a
    // Headers object per response under Deno) unless its length must be read.
    const retryAfter = ok ? undefined : parseRetryAfter(response.headers.get("retry-after"), now());
    return { status, text, retryAfterMs: retryAfter };
  } catch (error) {
    if (error instanceof HttpError) {
      // A redirect or an answer too long to read: the downstream answered, with this status.
      code = String(error.status);
      if (error instanceof RedirectError) options.onRedirect?.(error);
      throw error;
    }
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
    cancelTimeout();
    forget?.();
    options.onResponse?.(code, now() - started);
  }
}

/** How `/readyz` and `check-config --probe` name a redirect: "VALIDATOR_URL redirects to …". */
export function describeRedirect(variable: string, error: RedirectError): string {
  return error.location
    ? `${variable} redirects to ${error.location} (HTTP ${error.status})`
    : `${variable} answers with a redirect (HTTP ${error.status})`;
}

/**
 * Which downstreams redirect now: a target redirects from a 3xx answer until it
 * answers anything else. Each (target, Location) pair is reported once through
 * `onNew`, so a redirecting validator logs one line, not one per message.
 */
export class RedirectWatch {
  readonly #current = new Map<string, RedirectError>();
  readonly #reported = new Map<string, Set<string>>();
  readonly #onNew: (error: RedirectError) => void;

  /** `onNew` receives the first redirect to each Location per target. */
  constructor(onNew: (error: RedirectError) => void) {
    this.#onNew = onNew;
  }

  /** For HttpCallOptions.onRedirect. */
  redirected(error: RedirectError): void {
    this.#current.set(error.target, error);
    let seen = this.#reported.get(error.target);
    if (!seen) this.#reported.set(error.target, seen = new Set());
    if (seen.has(error.location) || seen.size >= 16) return; // bounded: a Location may vary per call
    seen.add(error.location);
    this.#onNew(error);
  }

  /** For HttpCallOptions.onResponse: any HTTP answer but a 3xx ends the redirect state. */
  answered(target: string, code: string): void {
    if (/^[124-9]\d\d$/.test(code)) this.#current.delete(target);
  }

  /** The last redirect of each target that redirects now. */
  current(): RedirectError[] {
    return [...this.#current.values()];
  }
}
