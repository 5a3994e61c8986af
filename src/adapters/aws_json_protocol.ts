/**
 * What SQS and DynamoDB share as AWS JSON-protocol services: the x-amz-date stamp, the
 * error `__type` code, clock-skew answers, and error bodies that may be empty or not JSON.
 */
import type { AwsCredentials } from "./aws_credentials.ts";
import { TimeoutError } from "../lib/errors.ts";
import { onAbort } from "../lib/on_abort.ts";
import { onTimeout } from "../lib/shared_timeouts.ts";
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

/** "com.amazonaws.sqs#QueueDoesNotExist" -> "QueueDoesNotExist" (some services append ":url"). */
export function shortCode(type: unknown): string {
  if (typeof type !== "string" || type === "") return "";
  const afterHash = type.slice(type.lastIndexOf("#") + 1);
  return afterHash.split(":")[0] ?? "";
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
  fetch: typeof fetch;
  signal?: AbortSignal | undefined;
  /** Names the call in a TimeoutError, e.g. "SQS ReceiveMessage". */
  label: string;
  /** The client's own error for a credential or network failure (retriable). */
  fail: (code: "CredentialsError" | "NetworkError", error: unknown) => Error;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

/** Signs and sends one request; reads the whole body inside the timeout window. */
export async function sendSignedJson(c: SignedCall): Promise<RawResponse> {
  const callerSignal = c.signal;
  callerSignal?.throwIfAborted();
  let creds: AwsCredentials;
  try {
    creds = await c.credentials();
  } catch (error) {
    throw c.fail("CredentialsError", error);
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
  const cancelTimeout = onTimeout(
    c.timeoutMs,
    () => timeout.abort(new TimeoutError(c.label, c.timeoutMs)),
  );
  const forget = callerSignal && onAbort(callerSignal, () => timeout.abort(callerSignal.reason));
  try {
    const response = await c.fetch(signed.url, {
      method: "POST",
      headers: signed.headers,
      body: c.body,
      signal: timeout.signal,
    });
    const text = await response.text();
    // Only a failure's headers are read (parseFailure): built on demand, not per response.
    return {
      status: response.status,
      get headers() {
        return response.headers;
      },
      text,
    };
  } catch (error) {
    if (callerSignal?.aborted) throw callerSignal.reason;
    if (timeout.signal.aborted) throw timeout.signal.reason;
    throw c.fail("NetworkError", error);
  } finally {
    cancelTimeout();
    forget?.();
  }
}
