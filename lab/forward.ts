/**
 * What the lab's AWS fault proxies share (lab/sqs_proxy.ts in front of fauxqs,
 * lab/table_proxy.ts in front of dynalite): the action of a JSON-protocol request,
 * forwarding it untouched, and an error answer in the service's own JSON shape.
 */

/** Headers that belong to one connection, never forwarded. */
const HOP_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "content-length",
  "transfer-encoding",
  "content-encoding",
  "accept-encoding",
]);

/** What every lab proxy is given. */
export interface ProxyOptions {
  /** the emulator's base URL, e.g. http://127.0.0.1:4566 */
  target: string;
  /** default Date.now */
  now?: () => number;
  /** default globalThis.fetch */
  fetch?: typeof fetch;
}

/** What every lab proxy counts. */
export interface ProxyCounts {
  /** every request, fault answers included */
  requests: number;
  /** requests by X-Amz-Target action (ReceiveMessage, PutItem, ...) */
  byAction: Record<string, number>;
}

/** Counts `req` in `counts`; returns its action. */
export function countRequest(counts: ProxyCounts, req: Request): string {
  const action = actionOf(req);
  counts.requests++;
  counts.byAction[action] = (counts.byAction[action] ?? 0) + 1;
  return action;
}

/** `ReceiveMessage` of `X-Amz-Target: AmazonSQS.ReceiveMessage`; "unknown" without one. */
export function actionOf(req: Request): string {
  const target = req.headers.get("x-amz-target") ?? "";
  return target.includes(".") ? target.slice(target.lastIndexOf(".") + 1) : target || "unknown";
}

/** The request's body, undefined when the client went away mid-request (a SIGKILLed worker). */
export async function readBody(req: Request): Promise<Uint8Array<ArrayBuffer> | undefined> {
  try {
    return new Uint8Array(await req.arrayBuffer());
  } catch {
    return undefined;
  }
}

/** The answer to a client that is gone: nobody reads it. */
export function clientGone(): Response {
  return new Response("client gone", { status: 499 });
}

/** The upstream's answer, read whole; a 502 answer when the upstream could not be reached. */
export interface Forwarded {
  status: number;
  headers: Headers;
  bytes: Uint8Array<ArrayBuffer>;
  /** false when the upstream failed and `status` is the proxy's own 502 */
  reached: boolean;
}

/** Sends `req` (its body already read as `body`) to the same path on `target`. */
export async function forward(
  target: string,
  req: Request,
  body: Uint8Array<ArrayBuffer>,
  doFetch: typeof fetch,
  signal: AbortSignal,
): Promise<Forwarded> {
  const url = new URL(req.url);
  try {
    const upstream = await doFetch(`${target}${url.pathname}${url.search}`, {
      method: req.method,
      headers: withoutHopHeaders(req.headers),
      ...(req.method === "GET" || req.method === "HEAD" ? {} : { body }),
      signal,
    });
    const bytes = new Uint8Array(await upstream.arrayBuffer());
    return { status: upstream.status, headers: upstream.headers, bytes, reached: true };
  } catch (err) {
    const bytes = new TextEncoder().encode(`lab proxy: upstream failed: ${err}`);
    return { status: 502, headers: new Headers(), bytes, reached: false };
  }
}

/** The forwarded answer as a Response to the client. */
export function answer(f: Forwarded): Response {
  return new Response(f.bytes, { status: f.status, headers: withoutHopHeaders(f.headers) });
}

/** An AWS JSON-protocol error answer: `{"__type": type, <messageKey>: message}`. */
export function awsJsonError(
  status: number,
  body: Record<string, string>,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/x-amz-json-1.0",
      "x-amzn-requestid": crypto.randomUUID(),
      ...headers,
    },
  });
}

function withoutHopHeaders(from: Headers): Headers {
  const out = new Headers();
  from.forEach((v, k) => {
    if (!HOP_HEADERS.has(k)) out.set(k, v);
  });
  return out;
}
