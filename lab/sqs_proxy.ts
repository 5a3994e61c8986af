/**
 * A counting HTTP proxy in front of fauxqs. The worker talks to SQS only
 * through it (AWS_ENDPOINT_URL_SQS), so the lab can count requests by action,
 * see when each message was first received (for receive-to-accept latency),
 * estimate how many messages a killed worker held, and fake an SQS outage.
 */
import { sleep } from "../src/lib/retry.ts";

export interface SqsProxyOptions {
  /** fauxqs base URL, e.g. http://127.0.0.1:4566 */
  target: string;
  /** queue default visibility, used when a receive does not ask for one; default 30 s */
  defaultVisibilitySeconds?: number;
  /** default Date.now */
  now?: () => number;
  /** default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface SqsProxyStats {
  /** every request the worker made, outage answers included */
  requests: number;
  /** requests by x-amz-target action (e.g. ReceiveMessage) */
  byAction: Record<string, number>;
  /** messages in ReceiveMessage answers, redeliveries included */
  messagesReceived: number;
  /** distinct SQS MessageIds received */
  distinctReceived: number;
  /** receipt handles deleted successfully */
  deleted: number;
  /** requests answered 503 (or stalled) by the simulated outage */
  outageAnswers: number;
}

export interface SqsProxy {
  /** base URL to give the worker as AWS_ENDPOINT_URL_SQS */
  readonly url: string;
  stats(): SqsProxyStats;
  /** first ReceiveMessage time (ms) by the message_id in the body, for valid-looking bodies */
  readonly firstReceive: ReadonlyMap<string, number>;
  /** messages received, not deleted, whose visibility has not run out: what a kill now would strand */
  inFlight(): number;
  /** fail every request for `ms` from now: 503s, and every third request stalls until the end */
  startOutage(ms: number): void;
  close(): Promise<void>;
}

interface Held {
  visibleAt: number;
}

const HOP_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "content-length",
  "transfer-encoding",
  "content-encoding",
  "accept-encoding",
]);

/** Starts the proxy on 127.0.0.1 with a free port. */
export function startSqsProxy(options: SqsProxyOptions): SqsProxy {
  const now = options.now ?? Date.now;
  const doFetch = options.fetch ?? fetch;
  const defaultVisibility = options.defaultVisibilitySeconds ?? 30;
  const firstReceive = new Map<string, number>();
  const seenMessageIds = new Set<string>();
  const held = new Map<string, Held>();
  const stats: SqsProxyStats = {
    requests: 0,
    byAction: {},
    messagesReceived: 0,
    distinctReceived: 0,
    deleted: 0,
    outageAnswers: 0,
  };
  let outageUntil = 0;
  let outageSeq = 0;
  // Ends stalled outage requests and upstream long polls when the lab closes.
  const closing = new AbortController();

  const onReceive = (reqBody: Record<string, unknown>, resBody: Record<string, unknown>) => {
    const t = now();
    const vis = typeof reqBody.VisibilityTimeout === "number"
      ? reqBody.VisibilityTimeout
      : defaultVisibility;
    const messages = Array.isArray(resBody.Messages) ? resBody.Messages : [];
    for (const m of messages as Array<Record<string, unknown>>) {
      stats.messagesReceived++;
      if (typeof m.MessageId === "string") seenMessageIds.add(m.MessageId);
      if (typeof m.ReceiptHandle === "string") {
        held.set(m.ReceiptHandle, { visibleAt: t + vis * 1000 });
      }
      const id = messageIdOf(m.Body);
      if (id !== undefined && !firstReceive.has(id)) firstReceive.set(id, t);
    }
    stats.distinctReceived = seenMessageIds.size;
  };

  /** Applies deletes and visibility changes that succeeded to the held receipt handles. */
  const onSettle = (
    action: string,
    reqBody: Record<string, unknown>,
    resBody: Record<string, unknown>,
  ) => {
    const t = now();
    const entries = Array.isArray(reqBody.Entries)
      ? reqBody.Entries as Array<Record<string, unknown>>
      : [];
    const okIds = new Set(
      (Array.isArray(resBody.Successful) ? resBody.Successful as Array<{ Id?: unknown }> : [])
        .map((s) => String(s.Id)),
    );
    const handle = (e: Record<string, unknown>) =>
      typeof e.ReceiptHandle === "string" ? e.ReceiptHandle : "";
    switch (action) {
      case "DeleteMessage":
        if (held.delete(handle(reqBody))) stats.deleted++;
        break;
      case "DeleteMessageBatch":
        for (const e of entries) {
          if (okIds.has(String(e.Id)) && held.delete(handle(e))) stats.deleted++;
        }
        break;
      case "ChangeMessageVisibility": {
        const h = held.get(handle(reqBody));
        if (h) h.visibleAt = t + Number(reqBody.VisibilityTimeout ?? 0) * 1000;
        break;
      }
      case "ChangeMessageVisibilityBatch":
        for (const e of entries) {
          const h = held.get(handle(e));
          if (h && okIds.has(String(e.Id))) {
            h.visibleAt = t + Number(e.VisibilityTimeout ?? 0) * 1000;
          }
        }
        break;
    }
  };

  const outageAnswer = async (): Promise<Response> => {
    stats.outageAnswers++;
    if (++outageSeq % 3 === 0) {
      // A stalled connection: the worker's own timeout has to fire.
      await sleep(outageUntil - now(), closing.signal).catch(() => undefined);
    }
    return new Response(
      JSON.stringify({
        __type: "com.amazonaws.sqs#ServiceUnavailable",
        message: "lab: simulated SQS outage",
      }),
      {
        status: 503,
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amzn-query-error": "AWS.SimpleQueueService.ServiceUnavailable;Server",
        },
      },
    );
  };

  const handler = async (req: Request): Promise<Response> => {
    stats.requests++;
    const target = req.headers.get("x-amz-target") ?? "";
    const action = target.includes(".")
      ? target.slice(target.lastIndexOf(".") + 1)
      : target || "unknown";
    stats.byAction[action] = (stats.byAction[action] ?? 0) + 1;
    const bodyBytes = new Uint8Array(await req.arrayBuffer());
    if (now() < outageUntil) return outageAnswer();

    const headers = new Headers();
    req.headers.forEach((v, k) => {
      if (!HOP_HEADERS.has(k)) headers.set(k, v);
    });
    const url = new URL(req.url);
    let upstream: Response;
    let resBytes: Uint8Array<ArrayBuffer>;
    try {
      upstream = await doFetch(`${options.target}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: bodyBytes }),
        signal: closing.signal,
      });
      resBytes = new Uint8Array(await upstream.arrayBuffer());
    } catch (err) {
      return new Response(`lab proxy: upstream failed: ${err}`, { status: 502 });
    }
    if (
      upstream.ok && (action === "ReceiveMessage" || action.startsWith("DeleteMessage") ||
        action.startsWith("ChangeMessageVisibility"))
    ) {
      // Tolerant: a body we cannot read is forwarded untouched and simply not counted.
      try {
        const decoder = new TextDecoder();
        const reqBody = JSON.parse(decoder.decode(bodyBytes)) as Record<string, unknown>;
        const resBody = resBytes.length
          ? JSON.parse(decoder.decode(resBytes)) as Record<string, unknown>
          : {};
        if (action === "ReceiveMessage") onReceive(reqBody, resBody);
        else onSettle(action, reqBody, resBody);
      } catch {
        // not the JSON protocol; nothing to count
      }
    }
    const outHeaders = new Headers();
    upstream.headers.forEach((v, k) => {
      if (!HOP_HEADERS.has(k)) outHeaders.set(k, v);
    });
    return new Response(resBytes, { status: upstream.status, headers: outHeaders });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    stats: () => ({ ...stats, byAction: { ...stats.byAction } }),
    firstReceive,
    inFlight: () => {
      const t = now();
      let n = 0;
      for (const [handle, h] of held) {
        if (h.visibleAt > t) n++;
        // An expired handle can no longer be deleted by its holder; forget it.
        else held.delete(handle);
      }
      return n;
    },
    startOutage: (ms) => {
      outageUntil = now() + ms;
    },
    close: () => {
      closing.abort();
      return server.shutdown();
    },
  };
}

/** The message_id of a body that looks like a message, else undefined (poison bodies included). */
export function messageIdOf(body: unknown): string | undefined {
  if (typeof body !== "string" || !body.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(body) as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
    const id = (parsed as Record<string, unknown>).message_id;
    return typeof id === "string" && id !== "" ? id : undefined;
  } catch {
    return undefined;
  }
}
