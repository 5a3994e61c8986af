/**
 * A counting HTTP proxy in front of fauxqs. The worker talks to SQS only
 * through it (AWS_ENDPOINT_URL_SQS), so the lab can count requests by action,
 * see when each message was first received (for receive-to-accept latency),
 * estimate how many messages a killed worker held, and fake an SQS outage.
 */
import { sleep } from "../src/lib/clock.ts";
import { type LocalServer, serveLocal } from "./local_server.ts";
import {
  answer,
  awsJsonError,
  clientGone,
  countRequest,
  forward,
  type ProxyCounts,
  type ProxyOptions,
  readBody,
} from "./forward.ts";

/** `target`: fauxqs. */
export interface SqsProxyOptions extends ProxyOptions {
  /** queue default visibility, used when a receive does not ask for one; default 30 s */
  defaultVisibilitySeconds?: number;
}

export interface SqsProxyStats extends ProxyCounts {
  /** messages in ReceiveMessage answers, redeliveries included */
  messagesReceived: number;
  /** distinct SQS MessageIds received */
  distinctReceived: number;
  /** receipt handles deleted successfully */
  deleted: number;
  /** requests answered 503 (or stalled) by the simulated outage */
  outageAnswers: number;
}

/** The proxy as served: `url` is the base URL to give the worker as AWS_ENDPOINT_URL_SQS. */
export interface SqsProxy extends LocalServer {
  stats(): SqsProxyStats;
  /** first ReceiveMessage time (ms) by the message_id in the body, for valid-looking bodies */
  readonly firstReceive: ReadonlyMap<string, number>;
  /** messages received, not deleted, whose visibility has not run out: what a kill now would strand */
  inFlight(): number;
  /** fail every request for `ms` from now: 503s, and every third request stalls until the end */
  startOutage(ms: number): void;
}

interface Held {
  visibleAt: number;
}

/** The proxy's counters and behaviour; `startSqsProxy` serves its `handle`. */
class CountingProxy {
  readonly stats: SqsProxyStats = {
    requests: 0,
    byAction: {},
    messagesReceived: 0,
    distinctReceived: 0,
    deleted: 0,
    outageAnswers: 0,
  };
  readonly firstReceive = new Map<string, number>();
  readonly held = new Map<string, Held>();
  // Ends stalled outage requests and upstream long polls when the lab closes.
  readonly closing = new AbortController();
  outageUntil = 0;
  readonly now: () => number;
  readonly #seenMessageIds = new Set<string>();
  readonly #fetch: typeof fetch;
  readonly #defaultVisibility: number;
  readonly #target: string;
  #outageSeq = 0;

  constructor(options: SqsProxyOptions) {
    this.now = options.now ?? Date.now;
    this.#fetch = options.fetch ?? fetch;
    this.#defaultVisibility = options.defaultVisibilitySeconds ?? 30;
    this.#target = options.target;
  }

  #onReceive(reqBody: Record<string, unknown>, resBody: Record<string, unknown>): void {
    const t = this.now();
    const vis = typeof reqBody.VisibilityTimeout === "number"
      ? reqBody.VisibilityTimeout
      : this.#defaultVisibility;
    const messages = Array.isArray(resBody.Messages) ? resBody.Messages : [];
    for (const m of messages as Array<Record<string, unknown>>) {
      this.stats.messagesReceived++;
      if (typeof m.MessageId === "string") this.#seenMessageIds.add(m.MessageId);
      if (typeof m.ReceiptHandle === "string") {
        this.held.set(m.ReceiptHandle, { visibleAt: t + vis * 1000 });
      }
      const id = messageIdOf(m.Body);
      if (id !== undefined && !this.firstReceive.has(id)) this.firstReceive.set(id, t);
    }
    this.stats.distinctReceived = this.#seenMessageIds.size;
  }

  /** Applies deletes and visibility changes that succeeded to the held receipt handles. */
  #onSettle(action: string, reqBody: Record<string, unknown>, resBody: Record<string, unknown>) {
    const t = this.now();
    const entries = Array.isArray(reqBody.Entries)
      ? reqBody.Entries as Array<Record<string, unknown>>
      : [];
    const okIds = new Set(
      (Array.isArray(resBody.Successful) ? resBody.Successful as Array<{ Id?: unknown }> : [])
        .map((s) => String(s.Id)),
    );
    const handle = (e: Record<string, unknown>) =>
      typeof e.ReceiptHandle === "string" ? e.ReceiptHandle : "";
    const held = this.held;
    switch (action) {
      case "DeleteMessage":
        if (held.delete(handle(reqBody))) this.stats.deleted++;
        break;
      case "DeleteMessageBatch":
        for (const e of entries) {
          if (okIds.has(String(e.Id)) && held.delete(handle(e))) this.stats.deleted++;
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
  }

  async #outageAnswer(): Promise<Response> {
    this.stats.outageAnswers++;
    if (++this.#outageSeq % 3 === 0) {
      // A stalled connection: the worker's own timeout has to fire.
      await sleep(this.outageUntil - this.now(), this.closing.signal).catch(() => undefined);
    }
    return awsJsonError(503, {
      __type: "com.amazonaws.sqs#ServiceUnavailable",
      message: "lab: simulated SQS outage",
    }, { "x-amzn-query-error": "AWS.SimpleQueueService.ServiceUnavailable;Server" });
  }

  /** Counts what a successful receive, delete or visibility change did. */
  #count(action: string, reqBytes: Uint8Array, resBytes: Uint8Array): void {
    if (
      action !== "ReceiveMessage" && !action.startsWith("DeleteMessage") &&
      !action.startsWith("ChangeMessageVisibility")
    ) return;
    // Tolerant: a body we cannot read is forwarded untouched and simply not counted.
    try {
      const decoder = new TextDecoder();
      const reqBody = JSON.parse(decoder.decode(reqBytes)) as Record<string, unknown>;
      const resBody = resBytes.length
        ? JSON.parse(decoder.decode(resBytes)) as Record<string, unknown>
        : {};
      if (action === "ReceiveMessage") this.#onReceive(reqBody, resBody);
      else this.#onSettle(action, reqBody, resBody);
    } catch {
      // not the JSON protocol; nothing to count
    }
  }

  handle = async (req: Request): Promise<Response> => {
    const action = countRequest(this.stats, req);
    const bodyBytes = await readBody(req);
    if (!bodyBytes) return clientGone();
    if (this.now() < this.outageUntil) return this.#outageAnswer();
    const upstream = await forward(this.#target, req, bodyBytes, this.#fetch, this.closing.signal);
    if (upstream.reached && upstream.status >= 200 && upstream.status < 300) {
      this.#count(action, bodyBytes, upstream.bytes);
    }
    return answer(upstream);
  };

  /** Handles received, not deleted, whose visibility has not run out. */
  inFlight(): number {
    const t = this.now();
    let n = 0;
    for (const [handle, h] of this.held) {
      if (h.visibleAt > t) n++;
      // An expired handle can no longer be deleted by its holder; forget it.
      else this.held.delete(handle);
    }
    return n;
  }
}

/** Starts the proxy on 127.0.0.1 with a free port. */
export function startSqsProxy(options: SqsProxyOptions): SqsProxy {
  const proxy = new CountingProxy(options);
  return {
    ...serveLocal(proxy.handle, proxy.closing),
    stats: () => ({ ...proxy.stats, byAction: { ...proxy.stats.byAction } }),
    firstReceive: proxy.firstReceive,
    inFlight: () => proxy.inFlight(),
    startOutage: (ms) => {
      proxy.outageUntil = proxy.now() + ms;
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
