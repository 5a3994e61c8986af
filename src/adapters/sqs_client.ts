/**
 * A small SQS client for the JSON protocol (`application/x-amz-json-1.0`), signed with SigV4
 * (adapters/sigv4.ts) and sent through an injected `fetch`. It does not retry on its own (except once after a
 * clock-skew or an ExpiredToken answer): callers wrap it in retry/breakers and decide per batch entry what to do.
 */

import type { Clock } from "../lib/clock.ts";
import { type SharedTimeouts, timeoutsOf } from "../lib/shared_timeouts.ts";
import type { AwsCredentials } from "./aws_credentials.ts";
import {
  isExpiredToken,
  isSkewError,
  parseJsonObject,
  type RawResponse,
  sendSignedJson,
  shortCode,
  transportResult,
} from "./aws_json_protocol.ts";
import { scrubAwsText } from "./aws_error_text.ts";
import { type Sha256, SigningKeyCache } from "./sigv4.ts";
import { SqsError } from "../lib/errors.ts";
import { globalFetch } from "../lib/guarded_fetch.ts";

/** A received message, with its system attributes and message attributes. */
export interface SqsMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  md5OfBody?: string;
  /** System attributes: ApproximateReceiveCount, SentTimestamp, ... */
  attributes: Record<string, string>;
  messageAttributes: Record<
    string,
    { DataType: string; StringValue?: string; BinaryValue?: string }
  >;
}

/** Per-entry outcome of a batch call: ids that succeeded and the entries SQS refused. */
/**
 * What a send to a FIFO queue carries: its message group, and a deduplication id, so a send
 * retried after a lost answer is not stored twice (SQS keeps the id for 5 minutes).
 */
export interface FifoSend {
  groupId: string;
  deduplicationId: string;
}

function fifoFields(fifo: FifoSend | undefined): Record<string, string> {
  return fifo ? { MessageGroupId: fifo.groupId, MessageDeduplicationId: fifo.deduplicationId } : {};
}

/** Whether a queue URL names a FIFO queue (its name ends in `.fifo`). */
export function isFifoQueue(queueUrl: string): boolean {
  return queueUrl.endsWith(".fifo");
}

export interface BatchResult {
  successful: string[];
  failed: Array<{ id: string; code: string; message: string; senderFault: boolean }>;
}

export interface SqsClientOptions {
  /** Signing region, e.g. `eu-west-1`. */
  region: string;
  /**
   * Endpoint override (AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL); default: the origin of each call's
   * queue URL, or https://sqs.{region}.amazonaws.com for calls without one.
   */
  endpoint?: string;
  /** Current credentials; called before every request (the provider caches). */
  credentials: () => Promise<AwsCredentials>;
  /** An ExpiredToken answer for `used`: the request is signed once more after this. */
  credentialsExpired?: (used: AwsCredentials) => void;
  /** Transport, default the global fetch. */
  fetch?: typeof fetch;
  /** The hasher requests are signed with (sigv4.ts). Default @noble/hashes. */
  sha256?: Sha256;
  /** Signing dates (its wall clock), durations and request timeouts. */
  clock: Clock;
  /** Per request, default 10000 ms; ReceiveMessage uses waitTimeSeconds*1000 + this. */
  timeoutMs?: number;
  /**
   * Called after every request: action, result ("ok" or the error code, "timeout", "network",
   * "aborted", "credentials"), duration ms.
   */
  /** `detail`: for a request that got no answer, which failure and where (network_failure.ts). */
  onRequest?: (action: string, result: string, durationMs: number, detail?: string) => void;
}

/**
 * ReceiveMessage's answer cap: 10 messages of up to 1 MiB each (body and attributes), which
 * JSON escaping may triple (a 4-byte character as a 12-byte `\uXXXX\uXXXX` pair), plus the
 * receipt handles, MD5s and attribute names. Every other answer has the protocol's 1 MiB cap.
 */
const MAX_RECEIVE_ANSWER_BYTES = 32 * 1024 * 1024;

/** Error codes that mean "slow down", retriable like a 429. */
const THROTTLING_CODES = new Set([
  "ThrottlingException",
  "RequestThrottled",
  "Throttling",
  "KmsThrottled",
]);

/**
 * Whether an SQS error says a receipt handle no longer names an in-flight
 * receive (docs/failure-handling.md): `ReceiptHandleIsInvalid`, `MessageNotInflight`,
 * or, as real SQS answers a visibility change on a stale handle,
 * `InvalidParameterValue` "… Message does not exist or is not available for
 * visibility timeout change". Other InvalidParameterValue answers are not stale.
 */
export function isStaleHandle(code: string, message: string): boolean {
  const short = shortQueryCode(code);
  if (short === "ReceiptHandleIsInvalid" || short === "MessageNotInflight") return true;
  if (short === "InvalidReceiptHandle") return true;
  return short === "InvalidParameterValue" &&
    /not available for visibility timeout change|receipt ?handle .*(invalid|expired)/i.test(
      message,
    );
}

/** Raised internally so the skew retry can see the server's Date header. */
interface ParsedFailure {
  error: SqsError;
  serverDate: number | undefined;
  skewed: boolean;
}

export class SqsClient {
  readonly #region: string;
  readonly #endpoint: string | undefined;
  readonly #credentials: () => Promise<AwsCredentials>;
  readonly #credentialsExpired: ((used: AwsCredentials) => void) | undefined;
  readonly #fetch: typeof fetch;
  readonly #clock: Clock;
  readonly #timeouts: SharedTimeouts;
  readonly #timeoutMs: number;
  readonly #onRequest:
    | ((action: string, result: string, durationMs: number, detail?: string) => void)
    | undefined;
  /** Signing keys derived per day/region; shared across credential rotations (keyed by secret). */
  readonly #signingKeyCache: SigningKeyCache;
  /** Server time minus our clock, learnt from a clock-skew answer; kept for later requests. */
  #clockOffsetMs = 0;

  constructor(options: SqsClientOptions) {
    this.#region = options.region;
    this.#endpoint = options.endpoint;
    this.#credentials = options.credentials;
    this.#credentialsExpired = options.credentialsExpired;
    this.#fetch = options.fetch ?? globalFetch;
    this.#signingKeyCache = new SigningKeyCache(options.sha256);
    this.#clock = options.clock;
    this.#timeouts = timeoutsOf(options.clock);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#onRequest = options.onRequest;
  }

  /** The clock offset currently applied when signing (server minus local, ms). */
  get clockOffsetMs(): number {
    return this.#clockOffsetMs;
  }

  async receiveMessage(p: {
    queueUrl: string;
    maxNumberOfMessages: number;
    waitTimeSeconds: number;
    visibilityTimeout?: number;
    /** System attributes wanted besides ApproximateReceiveCount and SentTimestamp. */
    moreSystemAttributes?: readonly string[];
    /** FIFO: the same id on a retry of a receive whose answer was lost replays that answer. */
    receiveRequestAttemptId?: string | undefined;
    signal?: AbortSignal;
  }): Promise<SqsMessage[]> {
    // AWSTraceHeader: the X-Ray trace context a producer (or SNS, Lambda) set (docs/tracing.md).
    const systemAttributes = ["ApproximateReceiveCount", "SentTimestamp", "AWSTraceHeader"];
    if (p.moreSystemAttributes) systemAttributes.push(...p.moreSystemAttributes);
    const payload: Record<string, unknown> = {
      QueueUrl: p.queueUrl,
      MaxNumberOfMessages: p.maxNumberOfMessages,
      WaitTimeSeconds: p.waitTimeSeconds,
      MessageSystemAttributeNames: systemAttributes,
      // Older emulators only know the deprecated name.
      AttributeNames: systemAttributes,
      MessageAttributeNames: ["All"],
    };
    if (p.visibilityTimeout !== undefined) payload.VisibilityTimeout = p.visibilityTimeout;
    if (p.receiveRequestAttemptId) payload.ReceiveRequestAttemptId = p.receiveRequestAttemptId;
    const out = await this.#call("ReceiveMessage", p.queueUrl, payload, {
      signal: p.signal,
      // The long poll legitimately holds the connection for the whole wait.
      timeoutMs: p.waitTimeSeconds * 1000 + this.#timeoutMs,
      maxAnswerBytes: MAX_RECEIVE_ANSWER_BYTES,
    });
    const messages = Array.isArray(out.Messages) ? out.Messages : [];
    return messages.map(toMessage);
  }

  deleteMessageBatch(
    queueUrl: string,
    entries: Array<{ id: string; receiptHandle: string }>,
    signal?: AbortSignal,
  ): Promise<BatchResult> {
    return this.#batch("DeleteMessageBatch", queueUrl, entries, signal, (e) => ({
      Id: e.id,
      ReceiptHandle: e.receiptHandle,
    }));
  }

  changeMessageVisibilityBatch(
    queueUrl: string,
    entries: Array<{ id: string; receiptHandle: string; visibilityTimeout: number }>,
    signal?: AbortSignal,
  ): Promise<BatchResult> {
    return this.#batch("ChangeMessageVisibilityBatch", queueUrl, entries, signal, (e) => ({
      Id: e.id,
      ReceiptHandle: e.receiptHandle,
      VisibilityTimeout: e.visibilityTimeout,
    }));
  }

  async changeMessageVisibility(
    queueUrl: string,
    receiptHandle: string,
    visibilityTimeout: number,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.#call("ChangeMessageVisibility", queueUrl, {
      QueueUrl: queueUrl,
      ReceiptHandle: receiptHandle,
      VisibilityTimeout: visibilityTimeout,
    }, { signal });
  }

  /** messageAttributes are sent as String attributes; empty values are skipped (SQS refuses them). */
  async sendMessage(
    queueUrl: string,
    body: string,
    messageAttributes?: Record<string, string>,
    signal?: AbortSignal,
    fifo?: FifoSend,
  ): Promise<{ messageId: string }> {
    const payload: Record<string, unknown> = {
      QueueUrl: queueUrl,
      MessageBody: body,
      ...fifoFields(fifo),
    };
    const attributes: Record<string, { DataType: string; StringValue: string }> = {};
    for (const [name, value] of Object.entries(messageAttributes ?? {})) {
      if (value !== "") attributes[name] = { DataType: "String", StringValue: value };
    }
    if (Object.keys(attributes).length > 0) payload.MessageAttributes = attributes;
    const out = await this.#call("SendMessage", queueUrl, payload, { signal });
    return { messageId: str(out.MessageId) };
  }

  /**
   * Sends a copy of a received message: the same body and message attributes, each
   * with its own DataType (a re-queue at shutdown must not change what consumers see).
   */
  async sendMessageCopy(
    queueUrl: string,
    body: string,
    messageAttributes: SqsMessage["messageAttributes"],
    signal?: AbortSignal,
    fifo?: FifoSend,
  ): Promise<{ messageId: string }> {
    const payload: Record<string, unknown> = {
      QueueUrl: queueUrl,
      MessageBody: body,
      ...fifoFields(fifo),
    };
    if (Object.keys(messageAttributes).length > 0) payload.MessageAttributes = messageAttributes;
    const out = await this.#call("SendMessage", queueUrl, payload, { signal });
    return { messageId: str(out.MessageId) };
  }

  sendMessageBatch(
    queueUrl: string,
    entries: Array<
      {
        id: string;
        body: string;
        messageAttributes?: SqsMessage["messageAttributes"];
        fifo?: FifoSend | undefined;
      }
    >,
    signal?: AbortSignal,
  ): Promise<BatchResult> {
    return this.#batch("SendMessageBatch", queueUrl, entries, signal, (e) => ({
      Id: e.id,
      MessageBody: e.body,
      ...fifoFields(e.fifo),
      // Kept whole (String, Number, Binary): the redrive copies them as they were.
      ...(e.messageAttributes && Object.keys(e.messageAttributes).length > 0
        ? { MessageAttributes: e.messageAttributes }
        : {}),
    }));
  }

  /** A batch action on `queueUrl`: each entry in SQS's shape (`toEntry`), the per-entry result back. */
  async #batch<E>(
    action: string,
    queueUrl: string,
    entries: E[],
    signal: AbortSignal | undefined,
    toEntry: (entry: E) => Record<string, unknown>,
  ): Promise<BatchResult> {
    const out = await this.#call(action, queueUrl, {
      QueueUrl: queueUrl,
      Entries: entries.map(toEntry),
    }, { signal });
    return toBatchResult(out);
  }

  async getQueueAttributes(
    queueUrl: string,
    names: string[],
    signal?: AbortSignal,
  ): Promise<Record<string, string>> {
    const out = await this.#call("GetQueueAttributes", queueUrl, {
      QueueUrl: queueUrl,
      AttributeNames: names,
    }, { signal });
    return stringRecord(out.Attributes);
  }

  async getQueueUrl(
    queueName: string,
    ownerAccountId?: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const payload: Record<string, unknown> = { QueueName: queueName };
    if (ownerAccountId !== undefined) payload.QueueOwnerAWSAccountId = ownerAccountId;
    const out = await this.#call("GetQueueUrl", undefined, payload, { signal });
    return str(out.QueueUrl);
  }

  /**
   * The URLs of the queues whose RedrivePolicy targets `dlqUrl`, every page (SQS answers at most
   * 1,000 a page; `maxPages` bounds the walk).
   */
  async listDeadLetterSourceQueues(
    dlqUrl: string,
    signal?: AbortSignal,
    maxPages = 10,
  ): Promise<string[]> {
    const urls: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      const payload: Record<string, unknown> = { QueueUrl: dlqUrl, MaxResults: 1000 };
      if (token) payload.NextToken = token;
      const out = await this.#call("ListDeadLetterSourceQueues", dlqUrl, payload, { signal });
      // The JSON protocol spells this member in lower camel case.
      const list = Array.isArray(out.queueUrls) ? out.queueUrls : out.QueueUrls;
      if (Array.isArray(list)) urls.push(...list.map(str));
      token = typeof out.NextToken === "string" && out.NextToken ? out.NextToken : undefined;
      if (!token) break;
    }
    return urls;
  }

  /** For the `dlq purge` command. */
  async purgeQueue(queueUrl: string): Promise<void> {
    await this.#call("PurgeQueue", queueUrl, { QueueUrl: queueUrl }, {});
  }

  #endpointFor(queueUrl: string | undefined): string {
    if (this.#endpoint) return this.#endpoint;
    if (queueUrl) {
      try {
        return new URL(queueUrl).origin + "/";
      } catch {
        // Fall through to the regional endpoint; SQS will answer about the bad URL itself.
      }
    }
    return `https://sqs.${this.#region}.amazonaws.com/`;
  }

  /** One action, with at most one extra attempt after a clock-skew answer. */
  async #call(
    action: string,
    queueUrl: string | undefined,
    payload: Record<string, unknown>,
    opts: { signal?: AbortSignal | undefined; timeoutMs?: number; maxAnswerBytes?: number },
  ): Promise<Record<string, unknown>> {
    const endpoint = this.#endpointFor(queueUrl);
    const body = JSON.stringify(payload);
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    for (let attempt = 1;; attempt++) {
      const started = this.#clock.now();
      let raw: RawResponse;
      try {
        raw = await this.#send(action, endpoint, body, opts, timeoutMs);
      } catch (err) {
        const detail = err instanceof SqsError && err.code === "NetworkError"
          ? err.detail
          : undefined;
        this.#report(action, transportResult(err), started, detail);
        throw err;
      }
      if (raw.status >= 200 && raw.status < 300) {
        const parsed = parseJsonObject(raw.text);
        if (parsed === undefined) {
          const error = new SqsError(
            action,
            "InvalidResponse",
            raw.status,
            scrubAwsText(raw.text),
            {
              retriable: false,
            },
          );
          this.#report(action, error.code, started);
          throw error;
        }
        this.#report(action, "ok", started);
        return parsed;
      }
      const failure = parseFailure(action, raw);
      this.#report(action, failure.error.code, started);
      if (failure.skewed && failure.serverDate !== undefined && attempt === 1) {
        // Sign again with the server's idea of now; keep the offset for later requests.
        this.#clockOffsetMs = failure.serverDate - this.#clock.now();
        continue;
      }
      if (this.#credentialsExpired && isExpiredToken(failure.error.code) && attempt === 1) {
        // Rotated keys (a refreshed shared file, a new instance-role session): sign again.
        this.#credentialsExpired(raw.keys);
        continue;
      }
      throw failure.error;
    }
  }

  #report(action: string, result: string, started: number, detail?: string): void {
    this.#onRequest?.(action, result, Math.max(0, this.#clock.now() - started), detail);
  }

  /** Signs and sends one request; reads the whole body inside the timeout window. */
  #send(
    action: string,
    endpoint: string,
    body: string,
    opts: { signal?: AbortSignal | undefined; maxAnswerBytes?: number },
    timeoutMs: number,
  ): Promise<RawResponse> {
    return sendSignedJson({
      service: "sqs",
      region: this.#region,
      endpoint,
      target: `AmazonSQS.${action}`,
      body,
      credentials: this.#credentials,
      cache: this.#signingKeyCache,
      signedAtMs: this.#clock.now() + this.#clockOffsetMs,
      timeoutMs,
      timeouts: this.#timeouts,
      fetch: this.#fetch,
      signal: opts.signal,
      ...(opts.maxAnswerBytes ? { maxAnswerBytes: opts.maxAnswerBytes } : {}),
      label: `SQS ${action}`,
      fail: (code, status, message, cause) =>
        new SqsError(action, code, status, message, { retriable: true, cause }),
    });
  }
}

/** region from a queue URL like https://sqs.eu-west-1.amazonaws.com/123/q (or sqs.<region>.localhost); undefined if none */
export function regionFromQueueUrl(url: string): string | undefined {
  let hostname: string;
  try {
    hostname = new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
  const labels = hostname.split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const here = labels[i] ?? "";
    const next = labels[i + 1] ?? "";
    // sqs.<region>.amazonaws.com, sqs.<region>.localhost, vpce-x.sqs.<region>.vpce.amazonaws.com
    if (here === "sqs" && isRegion(next)) return next;
    // Legacy <region>.queue.amazonaws.com
    if (next === "queue" && isRegion(here)) return here;
  }
  return undefined;
}

function isRegion(label: string): boolean {
  return /^[a-z]{2}(?:-[a-z]+)+-\d+$/.test(label);
}

function parseFailure(action: string, raw: RawResponse): ParsedFailure {
  const json = parseJsonObject(raw.text);
  const typeCode = shortCode(json?.__type);
  // x-amzn-query-error: "AWS.SimpleQueueService.NonExistentQueue;Sender"
  const queryError = raw.headers.get("x-amzn-query-error") ?? "";
  const queryCode = queryError.split(";")[0]?.trim() ?? "";
  const code = typeCode || shortQueryCode(queryCode) || `Http${raw.status}`;
  const message = scrubAwsText(
    str(json?.message ?? json?.Message ?? (json ? "" : raw.text.slice(0, 2000))),
  );
  const retriable = raw.status === 429 || raw.status >= 500 || THROTTLING_CODES.has(code) ||
    THROTTLING_CODES.has(shortQueryCode(queryCode));
  const error = new SqsError(action, code, raw.status, message, { retriable });
  const dateHeader = raw.headers.get("date");
  const serverDate = dateHeader ? Date.parse(dateHeader) : NaN;
  return {
    error,
    serverDate: Number.isFinite(serverDate) ? serverDate : undefined,
    skewed: isSkewError(code, message),
  };
}

/** "AWS.SimpleQueueService.NonExistentQueue" -> "NonExistentQueue". */
function shortQueryCode(code: string): string {
  return code.startsWith("AWS.SimpleQueueService.")
    ? code.slice("AWS.SimpleQueueService.".length)
    : code;
}

function toMessage(raw: unknown): SqsMessage {
  const m = (raw ?? {}) as Record<string, unknown>;
  const message: SqsMessage = {
    messageId: str(m.MessageId),
    receiptHandle: str(m.ReceiptHandle),
    body: str(m.Body),
    attributes: stringRecord(m.Attributes),
    messageAttributes: {},
  };
  if (typeof m.MD5OfBody === "string") message.md5OfBody = m.MD5OfBody;
  const attrs = m.MessageAttributes;
  if (attrs !== null && typeof attrs === "object") {
    for (const [name, value] of Object.entries(attrs as Record<string, unknown>)) {
      const v = (value ?? {}) as Record<string, unknown>;
      const entry: { DataType: string; StringValue?: string; BinaryValue?: string } = {
        DataType: str(v.DataType),
      };
      if (typeof v.StringValue === "string") entry.StringValue = v.StringValue;
      if (typeof v.BinaryValue === "string") entry.BinaryValue = v.BinaryValue;
      message.messageAttributes[name] = entry;
    }
  }
  return message;
}

function toBatchResult(out: Record<string, unknown>): BatchResult {
  const successful = Array.isArray(out.Successful) ? out.Successful : [];
  const failed = Array.isArray(out.Failed) ? out.Failed : [];
  return {
    successful: successful.map((s) => str((s as Record<string, unknown> | null)?.Id)),
    failed: failed.map((f) => {
      const e = (f ?? {}) as Record<string, unknown>;
      return {
        id: str(e.Id),
        code: str(e.Code),
        message: scrubAwsText(str(e.Message)),
        senderFault: e.SenderFault === true,
      };
    }),
  };
}

function stringRecord(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = str(v);
  }
  return out;
}

function str(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined || value === null) return "";
  return String(value);
}
