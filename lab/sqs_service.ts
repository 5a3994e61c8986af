/**
 * SQS as the proxy (lab/sqs_proxy.ts) serves it when no script answers: fauxqs, with what it
 * lacks made up (lab/sqs_fidelity.ts: characters, the batch limit, AWSTraceHeader and
 * DeadLetterQueueSourceArn), ListDeadLetterSourceQueues, optionally FIFO queues kept by the
 * proxy (lab/sqs_fifo.ts), and optionally queue URLs that name the proxy instead of fauxqs.
 */
import { answerHeaders, answerText, type SqsAnswer } from "./sqs_answers.ts";
import { FifoQueues } from "./sqs_fifo.ts";
import { md5Hex, prepareSend, unescapeBody } from "./sqs_fidelity.ts";

type Body = Record<string, unknown>;

/** An answer: its status, headers, bytes, and its JSON object when it is one. */
export interface Served {
  status: number;
  headers: Headers;
  bytes: Uint8Array<ArrayBuffer>;
  json: Body | undefined;
  /** false when fauxqs could not be reached (a 502 of the proxy's own) */
  reached: boolean;
}

/** A message a queue holds, as tests look at it. */
export interface QueueMessage {
  messageId: string;
  body: string;
  messageAttributes: Record<string, { DataType: string; StringValue?: string }>;
  receiveCount: number;
  sentAt: number;
  /** whether a receive could return it now */
  visible: boolean;
}

export interface SqsServiceOptions {
  /** fauxqs's base URL */
  target: string;
  fetch: typeof fetch;
  now: () => number;
  /** Queue URLs in answers name the origin the client reached (the proxy), not fauxqs. */
  ownQueueUrls: boolean;
  /** `.fifo` queues' messages kept here (lab/sqs_fifo.ts), not in fauxqs. */
  fifo: boolean;
  /** ends upstream requests and long polls when the proxy closes */
  closing: AbortSignal;
}

const HOP = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding"]);
const decoder = new TextDecoder();
const encoder = new TextEncoder();

export class SqsService {
  readonly #o: SqsServiceOptions;
  readonly #fifo: FifoQueues;
  /** SQS MessageId -> ARN of the queue it was first received from */
  readonly #firstQueue = new Map<string, string>();
  /** SQS MessageId -> the AWSTraceHeader it was sent with */
  readonly #traces = new Map<string, string>();
  readonly #arns = new Map<string, Promise<string>>();

  constructor(options: SqsServiceOptions) {
    this.#o = options;
    this.#fifo = new FifoQueues({
      now: options.now,
      attributesOf: (name) => this.#attributesOf(name),
      pause: (ms) => pause(ms, options.closing),
    });
  }

  /** Answers one request; `bytes` is its body, `origin` the URL the client reached. */
  async serve(
    action: string,
    headers: Headers,
    bytes: Uint8Array,
    origin: string,
  ): Promise<Served> {
    const body = parseObject(decoder.decode(bytes));
    if (!body) return await this.#post(headers, bytes);
    if (this.#o.fifo && FifoQueues.isFifoUrl(body.QueueUrl)) {
      const answer = await this.#fifo.handle(action, body, this.#o.closing);
      if (answer) return served(answer, this.#o.now());
    }
    switch (action) {
      case "SendMessage":
      case "SendMessageBatch":
        return await this.#send(action, headers, body);
      case "ReceiveMessage":
        return await this.#receive(headers, bytes, body);
      case "ListDeadLetterSourceQueues":
        return await this.#sources(body, origin);
      case "GetQueueAttributes":
        return withFifoCounts(await this.#post(headers, bytes), this.#fifo, body);
      case "SetQueueAttributes": {
        const answer = await this.#post(headers, bytes);
        this.#fifo.forget(String(body.QueueUrl));
        return answer;
      }
    }
    const answer = await this.#post(headers, bytes);
    return this.#o.ownQueueUrls ? withOwnUrls(answer, origin) : answer;
  }

  /** What a queue holds now (not deleted), oldest first. */
  async messages(name: string): Promise<QueueMessage[]> {
    if (this.#o.fifo && name.endsWith(".fifo")) return this.#fifo.snapshot(name) as QueueMessage[];
    const res = await this.#o.fetch(
      `${this.#o.target}/_fauxqs/queues/${encodeURIComponent(name)}`,
      {
        signal: this.#o.closing,
      },
    );
    if (res.status === 404) {
      await res.body?.cancel();
      return [];
    }
    const queue = await res.json() as { messages: FauxqsMessages };
    const t = Date.now();
    const { ready, delayed, inflight } = queue.messages;
    return [
      ...ready.map((m) => ({ m, visible: true })),
      ...delayed.map((m) => ({ m, visible: false })),
      ...inflight.map((e) => ({ m: e.message, visible: e.visibilityDeadline <= t })),
    ].map(({ m, visible }) => ({
      messageId: m.messageId,
      body: unescapeBody(m.body),
      messageAttributes: structuredClone(m.messageAttributes ?? {}),
      receiveCount: m.approximateReceiveCount,
      sentAt: m.sentTimestamp,
      visible,
    })).sort((a, b) => a.sentAt - b.sentAt);
  }

  async #send(action: string, headers: Headers, body: Body): Promise<Served> {
    const prepared = prepareSend(action, body);
    if (prepared.refused) return served(prepared.refused, this.#o.now());
    const answer = prepared.body
      ? await this.#post(headers, encoder.encode(JSON.stringify(prepared.body)))
      : served({ body: { Successful: [], Failed: [] } }, this.#o.now());
    if (!answer.json || answer.status !== 200) return answer;
    const out = answer.json;
    // fauxqs's MD5 is of the stored (escaped) body; SQS's is of the body sent.
    if (action === "SendMessage") {
      out.MD5OfMessageBody = md5Hex(String(body.MessageBody));
      this.#keepTrace(body, out.MessageId);
    } else {
      const entries = new Map((body.Entries as Body[]).map((e) => [String(e.Id), e]));
      for (const ok of (out.Successful ?? []) as Body[]) {
        const entry = entries.get(String(ok.Id));
        if (!entry) continue;
        ok.MD5OfMessageBody = md5Hex(String(entry.MessageBody));
        this.#keepTrace(entry, ok.MessageId);
      }
      out.Failed = [...((out.Failed ?? []) as Body[]), ...prepared.failed];
    }
    return reencoded(answer, out);
  }

  #keepTrace(entry: Body, messageId: unknown): void {
    const system = (entry.MessageSystemAttributes ?? {}) as Record<
      string,
      { StringValue?: unknown }
    >;
    const trace = system.AWSTraceHeader?.StringValue;
    if (typeof trace === "string" && typeof messageId === "string") {
      this.#traces.set(messageId, trace);
    }
  }

  async #receive(headers: Headers, bytes: Uint8Array, body: Body): Promise<Served> {
    const answer = await this.#post(headers, bytes);
    const messages = answer.json && Array.isArray(answer.json.Messages)
      ? answer.json.Messages as Body[]
      : [];
    if (messages.length === 0) return answer;
    const wanted = [body.AttributeNames, body.MessageSystemAttributeNames]
      .flatMap((names) => Array.isArray(names) ? names.map(String) : []);
    const wants = (name: string) => wanted.includes("All") || wanted.includes(name);
    const arn = await this.#arnOf(String(body.QueueUrl));
    for (const m of messages) {
      const id = String(m.MessageId);
      const stored = String(m.Body);
      m.Body = unescapeBody(stored);
      if (m.Body !== stored) m.MD5OfBody = md5Hex(m.Body as string);
      const first = this.#firstQueue.get(id);
      if (first === undefined) this.#firstQueue.set(id, arn);
      const system: Record<string, string> = {};
      if (first !== undefined && first !== arn && wants("DeadLetterQueueSourceArn")) {
        system.DeadLetterQueueSourceArn = first;
      }
      const trace = this.#traces.get(id);
      if (trace !== undefined && wants("AWSTraceHeader")) system.AWSTraceHeader = trace;
      if (Object.keys(system).length > 0) {
        m.Attributes = { ...(m.Attributes as Body | undefined), ...system };
      }
    }
    return reencoded(answer, answer.json!);
  }

  /** ListDeadLetterSourceQueues, which fauxqs lacks: the queues whose RedrivePolicy targets it. */
  async #sources(body: Body, origin: string): Promise<Served> {
    const dlq = await this.#internal("GetQueueAttributes", {
      QueueUrl: body.QueueUrl,
      AttributeNames: ["QueueArn"],
    });
    if (dlq.status !== 200) return dlq;
    const arn = (dlq.json?.Attributes as Body | undefined)?.QueueArn;
    const listed = await this.#internal("ListQueues", {});
    const queueUrls: string[] = [];
    for (const url of (listed.json?.QueueUrls ?? []) as string[]) {
      const a = await this.#internal("GetQueueAttributes", {
        QueueUrl: url,
        AttributeNames: ["RedrivePolicy"],
      });
      const policy = (a.json?.Attributes as Body | undefined)?.RedrivePolicy;
      if (typeof policy === "string" && parseObject(policy)?.deadLetterTargetArn === arn) {
        queueUrls.push(this.#o.ownQueueUrls ? origin + new URL(url).pathname : url);
      }
    }
    return served({ body: { queueUrls } }, this.#o.now());
  }

  /** The ARN of the queue at `queueUrl` (fauxqs's QueueArn), asked once per queue. */
  #arnOf(queueUrl: string): Promise<string> {
    const name = queueUrl.split("/").filter(Boolean).pop() ?? "";
    let arn = this.#arns.get(name);
    if (!arn) {
      arn = this.#attributesOf(name).then((a) => a?.QueueArn ?? "");
      this.#arns.set(name, arn);
    }
    return arn;
  }

  /** A queue's attributes from fauxqs; undefined when there is no such queue. */
  async #attributesOf(name: string): Promise<Record<string, string> | undefined> {
    // fauxqs finds a queue by the name in a URL whose host names no region.
    const a = await this.#internal("GetQueueAttributes", {
      QueueUrl: `http://fauxqs/000000000000/${encodeURIComponent(name)}`,
      AttributeNames: ["All"],
    });
    return a.status === 200 ? (a.json?.Attributes ?? {}) as Record<string, string> : undefined;
  }

  /** The proxy's own unsigned request to fauxqs. */
  #internal(action: string, body: Body): Promise<Served> {
    const headers = new Headers({
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `AmazonSQS.${action}`,
    });
    return this.#post(headers, encoder.encode(JSON.stringify(body)));
  }

  async #post(headers: Headers, bytes: Uint8Array): Promise<Served> {
    const out = new Headers();
    headers.forEach((v, k) => {
      if (!HOP.has(k)) out.set(k, v);
    });
    try {
      const res = await this.#o.fetch(`${this.#o.target}/`, {
        method: "POST",
        headers: out,
        body: bytes as Uint8Array<ArrayBuffer>,
        signal: this.#o.closing,
      });
      const answer = new Uint8Array(await res.arrayBuffer());
      const json = parseObject(decoder.decode(answer));
      return { status: res.status, headers: res.headers, bytes: answer, json, reached: true };
    } catch (err) {
      const answer = encoder.encode(`lab proxy: upstream failed: ${err}`);
      return {
        status: 502,
        headers: new Headers(),
        bytes: answer,
        json: undefined,
        reached: false,
      };
    }
  }
}

interface FauxqsMessage {
  messageId: string;
  body: string;
  messageAttributes?: Record<string, { DataType: string; StringValue?: string }>;
  approximateReceiveCount: number;
  sentTimestamp: number;
}

interface FauxqsMessages {
  ready: FauxqsMessage[];
  delayed: FauxqsMessage[];
  inflight: Array<{ message: FauxqsMessage; visibilityDeadline: number }>;
}

function served(answer: SqsAnswer, now: number): Served {
  return {
    status: answer.status ?? 200,
    headers: answerHeaders(answer, now),
    bytes: encoder.encode(answerText(answer)),
    json: typeof answer.body === "object" && answer.body !== null ? answer.body as Body : undefined,
    reached: true,
  };
}

function reencoded(answer: Served, json: Body): Served {
  return { ...answer, bytes: encoder.encode(JSON.stringify(json)), json };
}

/** GetQueueAttributes of a FIFO queue: the counts are the proxy's. */
function withFifoCounts(answer: Served, fifo: FifoQueues, body: Body): Served {
  const counts = FifoQueues.isFifoUrl(body.QueueUrl) ? fifo.counts(body.QueueUrl) : undefined;
  const attributes = answer.json?.Attributes as Record<string, string> | undefined;
  if (!counts || !attributes) return answer;
  for (const [k, v] of Object.entries(counts)) if (k in attributes) attributes[k] = v;
  return reencoded(answer, answer.json!);
}

/** QueueUrl and QueueUrls in an answer, on `origin` instead of fauxqs's host. */
function withOwnUrls(answer: Served, origin: string): Served {
  const json = answer.json;
  if (!json || (json.QueueUrl === undefined && json.QueueUrls === undefined)) return answer;
  const own = (url: unknown) => typeof url === "string" ? origin + new URL(url).pathname : url;
  if (json.QueueUrl !== undefined) json.QueueUrl = own(json.QueueUrl);
  if (Array.isArray(json.QueueUrls)) json.QueueUrls = json.QueueUrls.map(own);
  return reencoded(answer, json);
}

/** The JSON object in `text`; undefined when it holds none. */
export function parseObject(text: string): Body | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v as Body : undefined;
  } catch {
    return undefined;
  }
}

/** Waits `ms`; false when `signal` ended the wait. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve(!signal.aborted);
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
