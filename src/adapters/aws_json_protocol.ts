/**
 * What SQS and DynamoDB share as AWS JSON-protocol services: the x-amz-date stamp, the
 * error `__type` code, clock-skew answers, and error bodies that may be empty or not JSON.
 */
import type { AwsCredentials } from "./aws_credentials.ts";
import { AwsError, HttpError, RedirectError, TimeoutError } from "../lib/errors.ts";
import { fetchNoRedirect, readTextCapped, readTextPrefix } from "../lib/guarded_fetch.ts";
import { describeNetworkFailure } from "../lib/network_failure.ts";
import { onAbort } from "../lib/on_abort.ts";
import type { SharedTimeouts } from "../lib/shared_timeouts.ts";
import { type SigningKeyCache, signRequest } from "./sigv4.ts";

let lastSecond = NaN;
let lastStamp = "";

/** `20261128T210000Z`, as SigV4 wants it; the same second is formatted once. */
export function amzDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastStamp = new Date(second * 1000).toISOString().replace(/[:-]|\.\d{3}/g, "");
    lastSecond = second;
  }
  return lastStamp;
}

/**
 * "com.amazonaws.sqs#QueueDoesNotExist" -> "QueueDoesNotExist" (some services append ":url").
 * Cut at 64 characters: it reaches errors, /readyz and log lines as the endpoint sent it.
 */
export function shortCode(type: unknown): string {
  if (typeof type !== "string" || type === "") return "";
  const afterHash = type.slice(type.lastIndexOf("#") + 1);
  return (afterHash.split(":")[0] ?? "").slice(0, 64);
}

/** The answer says our clock is off: sign again with the server's Date. */
export function isSkewError(code: string, message: string): boolean {
  if (code === "RequestTimeTooSkewed" || code === "RequestExpired") return true;
  if (code === "SignatureDoesNotMatch" || code === "InvalidSignatureException") {
    return /signature expired|expired|not yet current|skew/i.test(message);
  }
  return false;
}

/** A JSON object body; `{}` for an empty one (void actions), undefined when not an object. */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  if (text.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One signed JSON-protocol request: what differs between SQS and DynamoDB. */
export interface SignedCall {
  /** SigV4 service name, e.g. "sqs", "dynamodb". */
  service: string;
  region: string;
  endpoint: string;
  /** x-amz-target, e.g. "AmazonSQS.ReceiveMessage". */
  target: string;
  body: string;
  credentials: () => Promise<AwsCredentials>;
  /** The client's signing-key cache, reused across requests. */
  cache: SigningKeyCache;
  /** Signing time, ms: our clock plus any skew learnt from the service. */
  signedAtMs: number;
  timeoutMs: number;
  /** The client's request timeouts, on its clock. */
  timeouts: SharedTimeouts;
  fetch: typeof fetch;
  signal?: AbortSignal | undefined;
  /** Names the call in a TimeoutError, e.g. "SQS ReceiveMessage". */
  label: string;
  /** A 2xx answer longer than this is refused (ResponseTooLarge). Default 1 MiB. */
  maxAnswerBytes?: number;
  /** The client's own error for a failure before or instead of an answer (retriable). */
  fail: (code: TransportCode, status: number, message: string, cause: unknown) => Error;
}

/**
 * Failures that are no answer of the service's: credentials not found, the network, a redirect
 * (never followed: its target would get the signed headers), an answer over the cap.
 */
export type TransportCode = "CredentialsError" | "NetworkError" | "Redirect" | "ResponseTooLarge";

/** The `onRequest` result of each transport failure (a fixed set: it becomes a metric label). */
const TRANSPORT_RESULTS: Record<string, string> = {
  CredentialsError: "credentials",
  NetworkError: "network",
  Redirect: "redirect",
  ResponseTooLarge: "too_large",
};

/** An AWS answer beyond what any action sluice sends can return (ReceiveMessage sets its own). */
const MAX_ANSWER_BYTES = 1024 * 1024;
/** An error answer is read this far: the code and message fit many times over. */
const MAX_ERROR_BYTES = 64 * 1024;

/** The onRequest result of a failed send: "timeout", a transport result, else "aborted". */
export function transportResult(error: unknown): string {
  if (error instanceof TimeoutError) return "timeout";
  if (error instanceof AwsError) return TRANSPORT_RESULTS[error.code] ?? "network";
  return "aborted";
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The credentials the request was signed with (for an ExpiredToken answer). */
  keys: AwsCredentials;
}

/** The answer says the session token has expired: credentials must be resolved again. */
export function isExpiredToken(code: string): boolean {
  return code === "ExpiredToken" || code === "ExpiredTokenException";
}

/** `host[:port]` of an endpoint, for a timeout's message. */
function hostOf(endpoint: string): string | undefined {
  return URL.canParse(endpoint) ? new URL(endpoint).host : undefined;
}

/** A request that got no usable answer, as the service's error. */
function transportFailure(c: SignedCall, error: unknown): Error {
  if (error instanceof RedirectError) {
    const where = error.location ? `Location ${error.location}` : "no Location";
    return c.fail("Redirect", error.status, `not followed (${where})`, error);
  }
  if (error instanceof HttpError) {
    return c.fail("ResponseTooLarge", error.status, error.body, error);
  }
  return c.fail("NetworkError", 0, describeNetworkFailure(error, c.endpoint), error);
}

/** Signs and sends one request; reads the body (within its cap) inside the timeout window. */
export async function sendSignedJson(c: SignedCall): Promise<RawResponse> {
  const callerSignal = c.signal;
  callerSignal?.throwIfAborted();
  let creds: AwsCredentials;
  try {
    creds = await c.credentials();
  } catch (error) {
    throw c.fail("CredentialsError", 0, errorMessage(error), error);
  }
  const signed = signRequest({
    url: c.endpoint,
    headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": c.target },
    body: c.body,
    keys: creds,
    region: c.region,
    service: c.service,
    amzDate: amzDate(c.signedAtMs),
  }, c.cache);
  // A timeout we can cancel (AbortSignal.timeout cannot be), on a shared timer. The caller's
  // abort is forwarded by a watcher forgotten in `finally` (lib/on_abort.ts): AbortSignal.any
  // would build a dependent signal (weak references, GC work) per request.
  const timeout = new AbortController();
  const cancelTimeout = c.timeouts.onTimeout(
    c.timeoutMs,
    () => timeout.abort(new TimeoutError(c.label, c.timeoutMs, { host: hostOf(c.endpoint) })),
  );
  const forget = callerSignal && onAbort(callerSignal, () => timeout.abort(callerSignal.reason));
  try {
    const response = await fetchNoRedirect(c.fetch, c.label, signed.url, {
      method: "POST",
      headers: signed.headers,
      body: c.body,
    }, timeout.signal);
    const status = response.status;
    const text = status >= 200 && status < 300
      ? await readTextCapped(response, c.label, c.maxAnswerBytes ?? MAX_ANSWER_BYTES)
      : await readTextPrefix(response, MAX_ERROR_BYTES);
    // Only a failure's headers are read (parseFailure): built on demand, not per response.
    return {
      status,
      get headers() {
        return response.headers;
      },
      text,
      keys: creds,
    };
  } catch (error) {
    if (callerSignal?.aborted) throw callerSignal.reason;
    if (timeout.signal.aborted) throw timeout.signal.reason;
    throw transportFailure(c, error);
  } finally {
    cancelTimeout();
    forget?.();
  }
}
