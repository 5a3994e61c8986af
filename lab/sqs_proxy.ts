/**
 * The one SQS of the lab and the tests: fauxqs behind this proxy. The worker talks to SQS only
 * through it (AWS_ENDPOINT_URL_SQS). It
 * - counts requests by action, messages received and deleted, first receive times and the
 *   receipt handles held (lab/sqs_counts.ts), and fakes an outage (`startOutage`);
 * - answers as scripted: `respond(action, ...answers)` queues one-shot answers for an action
 *   ("*": any), consumed first; `setDefault(action, answer)` sets a persistent one; the answers
 *   of lab/sqs_answers.ts carry real SQS's error texts. A function answer sees the request and
 *   may forward it (a partial batch failure whose other entries really happen);
 * - with `verifyWith`, checks every request's SigV4 signature (lab/sigv4_verifier.ts, apart
 *   from the worker's signer) and answers 403 SignatureDoesNotMatch when it is wrong, or
 *   "Signature expired" with a Date header when x-amz-date is more than `maxSkewMs` from `now`;
 * - makes up what fauxqs lacks (lab/sqs_service.ts): ListDeadLetterSourceQueues,
 *   DeadLetterQueueSourceArn, AWSTraceHeader, SQS's character set and batch limit, and with
 *   `fifo` FIFO queues with SQS's group order and ReceiveRequestAttemptId (lab/sqs_fifo.ts,
 *   where its limits are listed);
 * - with `record`, keeps every request (`requests`) for tests to look at.
 * No Deno or Bun API here but in `startSqsProxy`: `createSqsProxy` is the plain handler.
 */
import { sleep } from "../src/lib/clock.ts";
import { type LocalServer, serveLocal } from "./local_server.ts";
import {
  actionOf,
  answer,
  clientGone,
  countRequest,
  forward,
  type ProxyOptions,
  readBody,
} from "./forward.ts";
import { type Scripted, type SqsAnswer, sqsError, toResponse } from "./sqs_answers.ts";
import { SqsCounts, type SqsProxyStats } from "./sqs_counts.ts";
import { parseObject, type QueueMessage, type Served, SqsService } from "./sqs_service.ts";
import { verifySignature } from "./sigv4_verifier.ts";

export { messageIdOf, type SqsProxyStats } from "./sqs_counts.ts";
export type { QueueMessage } from "./sqs_service.ts";

/** `target`: fauxqs. */
export interface SqsProxyOptions extends ProxyOptions {
  /** queue default visibility, used when a receive does not ask for one; default 30 s */
  defaultVisibilitySeconds?: number;
  /** Check SigV4 signatures against these keys. */
  verifyWith?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** the signing region `verifyWith` expects; default us-east-1 */
  region?: string;
  /** how far x-amz-date may be from `now` when verifying; default 15 minutes, as SQS */
  maxSkewMs?: number;
  /** Keep every request in `requests`; default false (the lab's long runs) */
  record?: boolean;
  /** Queue URLs in answers name the proxy, not fauxqs; default false */
  ownQueueUrls?: boolean;
  /**
   * Keep the messages of `.fifo` queues in the proxy (lab/sqs_fifo.ts): up to ten of one group
   * per receive, as SQS; ReceiveRequestAttemptId replayed. They must then be sent through the
   * proxy (`ownFetch` for the lab's own sends). Default false: fauxqs serves FIFO queues alone,
   * one message of a group per receive.
   */
  fifo?: boolean;
}

/** One request as the proxy saw it. */
export interface RecordedRequest {
  /** from `X-Amz-Target: AmazonSQS.<Action>`; "unknown" without one */
  action: string;
  method: string;
  path: string;
  /** lower-case names */
  headers: Record<string, string>;
  rawBody: string;
  /** the JSON body, undefined when it is not a JSON object */
  body: Record<string, unknown> | undefined;
  /** `now` when it arrived */
  receivedAt: number;
  /** with `verifyWith`: whether the signature was right */
  signatureValid?: boolean;
  /** the status answered, once answered */
  status?: number;
}

/** The proxy as a plain handler, for whatever serves it. */
export interface SqsProxyHandler {
  handle(request: Request): Promise<Response>;
  /** The origin it is served on: `call` answers queue URLs on it. */
  listening(origin: string): void;
  /** Ends stalled answers, long polls and upstream requests. */
  abort(): void;
  stats(): SqsProxyStats;
  /** first ReceiveMessage time (ms) by the message_id in the body, for valid-looking bodies */
  readonly firstReceive: ReadonlyMap<string, number>;
  /** messages received, not deleted, whose visibility has not run out: what a kill now would strand */
  inFlight(): number;
  /** The message_ids of the bodies in flight, one per receipt handle. */
  inFlightIds(): string[];
  /** fail every request for `ms` from now: 503s, and every third request stalls until the end */
  startOutage(ms: number): void;
  /** with `record`: every request, in arrival order */
  readonly requests: readonly RecordedRequest[];
  requestsFor(action: string): RecordedRequest[];
  /** One-shot answers for `action` ("*": any action), consumed in order before any default. */
  respond(action: string, ...answers: Scripted[]): void;
  /** A persistent answer for `action` ("*": any), or undefined to clear it. */
  setDefault(action: string, answer: Scripted | undefined): void;
  /** The proxy's own request: not verified, recorded, counted or scripted. */
  call(action: string, body: Record<string, unknown>): Promise<{ status: number; body: unknown }>;
  /** A fetch for the proxy's own JSON-protocol requests (an SqsAdmin's): as `call`. */
  ownFetch: typeof fetch;
  /** What queue `name` holds now (not deleted), oldest first. */
  messages(name: string): Promise<QueueMessage[]>;
}

/** The proxy as served: `url` is the base URL to give the worker as AWS_ENDPOINT_URL_SQS. */
export type SqsProxy = LocalServer & Omit<SqsProxyHandler, "handle" | "listening" | "abort">;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** The proxy's state and request path; `createSqsProxy` shapes it. */
class ProxyCore {
  readonly closing = new AbortController();
  readonly counts: SqsCounts;
  readonly service: SqsService;
  readonly requests: RecordedRequest[] = [];
  readonly scripted = new Map<string, Scripted[]>();
  readonly defaults = new Map<string, Scripted>();
  readonly now: () => number;
  origin = "";
  outageUntil = 0;
  readonly #o: SqsProxyOptions;
  readonly #fetch: typeof fetch;
  #outageSeq = 0;

  constructor(options: SqsProxyOptions) {
    this.#o = options;
    this.now = options.now ?? Date.now;
    this.#fetch = options.fetch ?? fetch;
    this.counts = new SqsCounts(this.now, options.defaultVisibilitySeconds ?? 30);
    this.service = new SqsService({
      target: options.target,
      fetch: this.#fetch,
      now: this.now,
      ownQueueUrls: options.ownQueueUrls ?? false,
      fifo: options.fifo ?? false,
      closing: this.closing.signal,
    });
  }

  handle = async (req: Request): Promise<Response> => {
    const action = countRequest(this.counts.stats, req);
    const bytes = await readBody(req);
    if (!bytes) return clientGone();
    const record = this.#record(req, action, bytes);
    const response = await this.#answer(req, action, bytes, record);
    if (record) record.status = response.status;
    return response;
  };

  async #answer(
    req: Request,
    action: string,
    bytes: Uint8Array<ArrayBuffer>,
    record: RecordedRequest | undefined,
  ): Promise<Response> {
    if (this.now() < this.outageUntil) return await this.#outageAnswer();
    if (req.method !== "POST") {
      return answer(await forward(this.#o.target, req, bytes, this.#fetch, this.closing.signal));
    }
    if (this.#o.verifyWith) {
      const denied = await verifySignature(req, decoder.decode(bytes), {
        keys: this.#o.verifyWith,
        region: this.#o.region ?? "us-east-1",
        now: this.now,
        maxSkewMs: this.#o.maxSkewMs ?? 15 * 60_000,
      });
      if (record) record.signatureValid = denied === undefined;
      if (denied) return toResponse(denied, this.now());
    }
    const origin = new URL(req.url).origin;
    const scripted = this.#next(action);
    const serve = (body: Uint8Array) => this.service.serve(action, req.headers, body, origin);
    if (scripted === undefined) return this.#counted(action, bytes, await serve(bytes));
    const given = await this.#scripted(scripted, action, bytes, serve);
    if (given.delayMs) await sleep(given.delayMs, this.closing.signal).catch(() => undefined);
    if (given.passThrough) return this.#counted(action, bytes, await serve(bytes));
    return toResponse(given, this.now());
  }

  /** A scripted answer; a function one is run with the request and SQS behind the proxy. */
  async #scripted(
    scripted: Scripted,
    action: string,
    bytes: Uint8Array,
    serve: (body: Uint8Array) => Promise<Served>,
  ): Promise<SqsAnswer> {
    if (typeof scripted !== "function") return scripted;
    const body = parseObject(decoder.decode(bytes)) ?? {};
    return await scripted({
      action,
      body,
      forward: async (sent = body) => {
        const got = await serve(encoder.encode(JSON.stringify(sent)));
        return { status: got.status, body: got.json ?? decoder.decode(got.bytes) };
      },
    });
  }

  /** SQS's own answer, counted when it succeeded. */
  #counted(action: string, bytes: Uint8Array, served: Served): Response {
    if (served.reached && served.status >= 200 && served.status < 300 && served.json) {
      const request = parseObject(decoder.decode(bytes));
      if (request) this.counts.onSuccess(action, request, served.json);
    }
    return answer({ ...served });
  }

  #next(action: string): Scripted | undefined {
    for (const key of [action, "*"]) {
      const list = this.scripted.get(key);
      if (list && list.length > 0) return list.shift();
    }
    return this.defaults.get(action) ?? this.defaults.get("*");
  }

  #record(req: Request, action: string, bytes: Uint8Array): RecordedRequest | undefined {
    if (!this.#o.record) return undefined;
    const rawBody = decoder.decode(bytes);
    const record: RecordedRequest = {
      action,
      method: req.method,
      path: new URL(req.url).pathname,
      headers: Object.fromEntries(req.headers),
      rawBody,
      body: parseObject(rawBody),
      receivedAt: this.now(),
    };
    this.requests.push(record);
    return record;
  }

  async #outageAnswer(): Promise<Response> {
    this.counts.stats.outageAnswers++;
    if (++this.#outageSeq % 3 === 0) {
      // A stalled connection: the worker's own timeout has to fire.
      await sleep(this.outageUntil - this.now(), this.closing.signal).catch(() => undefined);
    }
    const outage = sqsError("ServiceUnavailable", {
      status: 503,
      message: "lab: simulated SQS outage",
    });
    return toResponse(outage, this.now());
  }
}

/** The proxy as a plain `(Request) => Response` handler with its controls. */
export function createSqsProxy(options: SqsProxyOptions): SqsProxyHandler {
  const core = new ProxyCore(options);
  const counts = core.counts;
  return {
    handle: core.handle,
    listening: (origin) => {
      core.origin = origin;
    },
    abort: () => core.closing.abort(),
    stats: () => ({ ...counts.stats, byAction: { ...counts.stats.byAction } }),
    firstReceive: counts.firstReceive,
    inFlight: () => counts.inFlight(),
    inFlightIds: () => counts.inFlightIds(),
    startOutage: (ms) => {
      core.outageUntil = core.now() + ms;
    },
    requests: core.requests,
    requestsFor: (action) => core.requests.filter((r) => r.action === action),
    respond: (action, ...answers) => {
      core.scripted.set(action, [...(core.scripted.get(action) ?? []), ...answers]);
    },
    setDefault: (action, given) => {
      if (given) core.defaults.set(action, given);
      else core.defaults.delete(action);
    },
    call: async (action, body) => {
      const headers = new Headers({
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": `AmazonSQS.${action}`,
      });
      const bytes = encoder.encode(JSON.stringify(body));
      const got = await core.service.serve(action, headers, bytes, core.origin);
      return { status: got.status, body: got.json ?? decoder.decode(got.bytes) };
    },
    ownFetch: async (input, init) => {
      const req = new Request(input, init);
      const bytes = new Uint8Array(await req.arrayBuffer());
      return answer(await core.service.serve(actionOf(req), req.headers, bytes, core.origin));
    },
    messages: (name) => core.service.messages(name),
  };
}

/** Starts the proxy on 127.0.0.1 with a free port. */
export function startSqsProxy(options: SqsProxyOptions): SqsProxy {
  const proxy = createSqsProxy(options);
  const closing = new AbortController();
  closing.signal.addEventListener("abort", () => proxy.abort());
  const server = serveLocal(proxy.handle, closing);
  proxy.listening(server.url);
  const { handle: _h, listening: _l, abort: _a, ...controls } = proxy;
  return { ...controls, url: server.url, close: server.close };
}
