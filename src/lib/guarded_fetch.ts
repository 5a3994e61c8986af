/**
 * The one way sluice sends an HTTP request (AWS, IMDS, the downstreams, the probes): a redirect
 * is never followed, and an answer is read only up to a byte cap. A followed redirect would hand
 * the signed headers and the session token to whatever the `Location` names, turn https into
 * http past the clear-text check, and take the target's 200 as the real answer
 * (docs/failure-handling.md). tests/lib/guarded_fetch_test.ts fails on any other fetch call
 * under src/.
 */
import { HttpError, RedirectError } from "./errors.ts";
import { Answer } from "./http1_answer.ts";

/** The runtime's fetch, looked up per call (a test may stub it): the default transport. */
export const globalFetch: typeof fetch = (input, init) => fetch(input, init);

/**
 * Sends `init` with `redirect: "manual"` (and `signal`, when given, in place of init's). A 3xx
 * answer, or a spec-strict fetch's opaque redirect, is a RedirectError naming the `Location`
 * (its body cancelled); any other answer is returned unread.
 */
export async function fetchNoRedirect(
  doFetch: typeof fetch,
  target: string,
  url: string,
  init: RequestInit,
  signal?: AbortSignal,
): Promise<Response> {
  // One object per request, as the callers built before: the hot path pays nothing more.
  const response = await doFetch(url, {
    ...init,
    redirect: "manual",
    signal: signal ?? init.signal ?? null,
  });
  const status = response.status;
  if ((status < 300 || status > 399) && response.type !== "opaqueredirect") return response;
  const redirect = redirectOf(response, url);
  await discardBody(response)?.catch(() => {});
  throw new RedirectError(target, redirect?.status ?? status, redirect?.location ?? "");
}

/**
 * Lets an unread body go: a stream is cancelled, which frees its connection; a body already in
 * memory (lib/http1_answer.ts) needs nothing, and making a stream to cancel it would cost more.
 */
export function discardBody(response: Response): Promise<void> | undefined {
  if ((response as unknown) instanceof Answer) return undefined;
  return response.body?.cancel();
}

/** The redirect a response stands for, if it is one; `location` resolved against the request. */
export function redirectOf(
  response: Pick<Response, "status" | "type" | "headers">,
  requestUrl: string,
): { status: number; location: string } | undefined {
  if (response.type === "opaqueredirect") return { status: response.status, location: "" };
  if (response.status < 300 || response.status > 399) return undefined;
  const raw = response.headers.get("location") ?? "";
  let location = raw;
  try {
    if (raw) {
      const url = new URL(raw, requestUrl);
      // Logged and shown on /readyz: never a password someone put in the Location.
      url.username = "";
      url.password = "";
      location = url.href;
    }
  } catch {
    // An unparsable Location is reported as sent, but for what looks like its user:password@.
    location = raw.replace(/^([a-z][a-z\d+.-]*:\/\/)[^/?#]*@/i, "$1");
  }
  return { status: response.status, location };
}

/**
 * The whole body as text, or an HttpError (TRANSIENT: the answer, not the message, is wrong)
 * once it passes `maxBytes`.
 */
export async function readTextCapped(
  response: Response,
  target: string,
  maxBytes: number,
): Promise<string> {
  const { text, cut } = await readUpTo(response, maxBytes);
  if (cut) throw tooLarge(target, response.status, maxBytes);
  return text;
}

/** At most `maxBytes` of the body as text (an error answer's prefix); the rest is cancelled. */
export async function readTextPrefix(response: Response, maxBytes: number): Promise<string> {
  return (await readUpTo(response, maxBytes)).text;
}

/**
 * An unencoded body whose Content-Length is within the cap is read by the runtime in one go
 * (it reads no more than that length, and it is the fast way); any other body is streamed and
 * cut at the cap, so neither a chunked flood nor a compressed bomb is held in memory.
 */
async function readUpTo(
  response: Response,
  maxBytes: number,
): Promise<{ text: string; cut: boolean }> {
  const headers = response.headers;
  const declared = headers.get("content-length");
  if (
    declared !== null && headers.get("content-encoding") === null && Number(declared) <= maxBytes
  ) {
    return { text: await response.text(), cut: false };
  }
  const { bytes, cut } = await readBytes(response, maxBytes);
  return { text: decoder.decode(bytes), cut };
}

const decoder = new TextDecoder();

function tooLarge(target: string, status: number, maxBytes: number): HttpError {
  return new HttpError(target, status, `answer longer than ${maxBytes} bytes, not read`, {
    category: "TRANSIENT",
  });
}

/** Reads up to `maxBytes`; `cut` when more was on the way (then the stream is cancelled). */
async function readBytes(
  response: Response,
  maxBytes: number,
): Promise<{ bytes: Uint8Array; cut: boolean }> {
  const body = response.body;
  if (!body) return { bytes: new Uint8Array(0), cut: false };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  let cut = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = maxBytes - length;
      if (value.byteLength > room) {
        chunks.push(value.subarray(0, room));
        length += room;
        cut = true;
        break;
      }
      chunks.push(value);
      length += value.byteLength;
    }
  } finally {
    if (cut) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  if (chunks.length === 1) return { bytes: chunks[0]!, cut };
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { bytes, cut };
}
