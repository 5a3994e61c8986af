/**
 * A programmable fake SQS (JSON protocol) on 127.0.0.1 for tests.
 *
 * It has two layers:
 * - scripted answers: `respond(action, ...answers)` queues one-shot answers for an action (or "*"
 *   for any), `setDefault(action, answer)` sets a persistent one (an outage); the `faults` helpers
 *   build the usual ones (throttling, 5xx, skew, slow, broken connection, ...).
 * - an in-memory queue service used when nothing is scripted: CreateQueue, GetQueueUrl,
 *   GetQueueAttributes, SendMessage(Batch), ReceiveMessage (long polling, visibility timeouts,
 *   receive counts, redrive to a dead-letter queue), DeleteMessage(Batch),
 *   ChangeMessageVisibility(Batch), PurgeQueue, with SQS's validation of batch ids, empty
 *   attribute values, characters outside SQS's set in bodies (InvalidMessageContents) and
 *   attribute values (InvalidParameterValue; lone surrogates too), the 10-attribute and 1 MiB
 *   limits and the 12-hour visibility limit.
 *
 * With `verifyWith` it checks every request's SigV4 signature (computed independently of the
 * client's signer) and answers 403 SignatureDoesNotMatch when it is wrong, or "Signature expired"
 * when x-amz-date is more than 5 minutes from the fake's clock (`now`), with a Date header taken
 * from that clock, so a client's clock-skew correction can be tested end to end.
 *
 * @example
 * ```ts
 * const sqs = await startFakeSqs({ verifyWith: { accessKeyId: "AKID", secretAccessKey: "SECRET" } });
 * try {
 *   const queueUrl = sqs.createQueue("work", { VisibilityTimeout: "30" });
 *   sqs.respond("DeleteMessageBatch", faults.throttling()); // first delete batch is throttled
 *   // ... point the code under test at queueUrl (its origin is the fake's url) ...
 *   assert.equal(sqs.requests.filter((r) => r.action === "ReceiveMessage").length, 1);
 *   assert.equal(sqs.messages("work").length, 0);
 * } finally {
 *   await sqs.close();
 * }
 * ```
 */

import { createHash } from "node:crypto";

/** A scripted answer. */
export interface FakeAnswer {
  /** HTTP status, default 200. */
  status?: number;
  /** Response body: objects are JSON-encoded, strings sent as they are; default `{}`. */
  body?: unknown;
  /** Extra response headers (e.g. `x-amzn-query-error`, `date`). */
  headers?: Record<string, string>;
  /** Wait this long before answering (ends early if the fake closes). */
  delayMs?: number;
  /** Send the headers, then break the connection mid-body (a network failure for the client). */
  breakConnection?: boolean;
  /** After the delay, answer as the in-memory service would (a slow but correct answer). */
  passThrough?: boolean;
}

/** One request as the fake saw it. */
export interface RecordedRequest {
  /** From `x-amz-target: AmazonSQS.<Action>`; "" when absent. */
  action: string;
  method: string;
  path: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  rawBody: string;
  /** Parsed JSON body, or undefined if it was not JSON. */
  body: Record<string, unknown> | undefined;
  /** Fake clock (`now`) when received. */
  receivedAt: number;
  /** Signature check result when `verifyWith` is set. */
  signatureValid?: boolean;
  /** Status the fake answered with (set once answered). */
  status?: number;
}

export interface FakeSqsOptions {
  /** Check SigV4 signatures against these keys; a wrong one gets 403 SignatureDoesNotMatch. */
  verifyWith?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Region for ARNs and the signature scope, default "us-east-1". */
  region?: string;
  /** Account id in queue URLs and ARNs, default "000000000000". */
  accountId?: string;
  /** The fake's clock: visibility timeouts, SentTimestamp, Date header, skew check; default Date.now. */
  now?: () => number;
  /** Allowed difference between x-amz-date and `now` when verifying, default 5 min. */
  maxSkewMs?: number;
  /** Queues to create at start: name -> attributes. */
  queues?: Record<string, Record<string, string>>;
}

/** A snapshot of a stored message. */
export interface FakeMessage {
  messageId: string;
  body: string;
  messageAttributes: Record<string, { DataType: string; StringValue?: string }>;
  receiveCount: number;
  sentAt: number;
  /** Whether a receive could return it now. */
  visible: boolean;
}

export interface FakeSqs {
  /** Base URL, e.g. http://127.0.0.1:41234 (also the origin of its queue URLs). */
  readonly url: string;
  /** Every request in arrival order. */
  readonly requests: RecordedRequest[];
  /** Queue one-shot answers for an action ("*" = any action); consumed before defaults. */
  respond(action: string, ...answers: FakeAnswer[]): void;
  /** A persistent answer for an action ("*" = any), or undefined to clear it. */
  setDefault(action: string, answer: FakeAnswer | undefined): void;
  /** Create a queue directly (idempotent); returns its URL. */
  createQueue(name: string, attributes?: Record<string, string>): string;
  /** URL of a queue by name (whether or not it exists). */
  queueUrl(name: string): string;
  /** Put a message directly, as SendMessage would; returns its id. */
  send(queueName: string, body: string, messageAttributes?: Record<string, string>): string;
  /** Messages currently stored in a queue (not deleted), in arrival order. */
  messages(queueName: string): FakeMessage[];
  /** Requests for one action. */
  requestsFor(action: string): RecordedRequest[];
  /** Stop the server: ends long polls and delayed answers, waits for connections to finish. */
  close(): Promise<void>;
}

/** Builds an SQS JSON-protocol error answer (`__type` plus the `x-amzn-query-error` header). */
export function sqsErrorAnswer(
  code: string,
  options: {
    status?: number;
    message?: string;
    queryError?: string;
    headers?: Record<string, string>;
  } = {},
): FakeAnswer {
  const status = options.status ?? 400;
  const fault = status >= 500 ? "Receiver" : "Sender";
  return {
    status,
    body: { __type: `com.amazonaws.sqs#${code}`, message: options.message ?? code },
    headers: {
      "x-amzn-query-error": `${options.queryError ?? `AWS.SimpleQueueService.${code}`};${fault}`,
      ...options.headers,
    },
  };
}

/** The usual faults. */
export const faults = {
  /** 400 ThrottlingException (as SQS answers an exceeded request rate). */
  throttling: (): FakeAnswer =>
    sqsErrorAnswer("ThrottlingException", {
      message: "Rate exceeded",
      queryError: "ThrottlingException",
    }),
  /** A 5xx with an InternalError body. */
  serverError: (status = 500): FakeAnswer =>
    sqsErrorAnswer(status === 503 ? "ServiceUnavailable" : "InternalError", { status }),
  /** A 5xx with a non-JSON body, as a load balancer might answer. */
  gatewayError: (status = 502): FakeAnswer => ({
    status,
    body: "<html>Bad Gateway</html>",
    headers: { "content-type": "text/html" },
  }),
  receiptHandleIsInvalid: (): FakeAnswer =>
    sqsErrorAnswer("ReceiptHandleIsInvalid", { message: "The input receipt handle is invalid." }),
  messageNotInflight: (): FakeAnswer =>
    sqsErrorAnswer("MessageNotInflight", {
      message: "Message does not exist or is not available for visibility timeout change.",
      queryError: "AWS.SimpleQueueService.MessageNotInflight",
    }),
  queueDoesNotExist: (): FakeAnswer =>
    sqsErrorAnswer("QueueDoesNotExist", {
      message: "The specified queue does not exist.",
      queryError: "AWS.SimpleQueueService.NonExistentQueue",
    }),
  /** 400 RequestTimeTooSkewed with the given server time in the Date header. */
  skewed: (serverTimeMs: number): FakeAnswer =>
    sqsErrorAnswer("RequestTimeTooSkewed", {
      message: "The difference between the request time and the server's time is too large.",
      headers: { date: new Date(serverTimeMs).toUTCString() },
    }),
  /** Answer after delayMs: by default as the in-memory service would, or with `answer`. */
  slow: (delayMs: number, answer?: FakeAnswer): FakeAnswer =>
    answer ? { ...answer, delayMs } : { delayMs, passThrough: true },
  /** Headers, then a broken connection. */
  brokenConnection: (): FakeAnswer => ({ breakConnection: true }),
  /** A partial batch answer: the listed ids succeed, the others fail with `code`. */
  partialBatch: (
    successfulIds: string[],
    failed: Array<{ id: string; code: string }>,
  ): FakeAnswer => ({
    body: {
      Successful: successfulIds.map((Id) => ({ Id })),
      Failed: failed.map((f) => ({
        Id: f.id,
        Code: f.code,
        Message: f.code,
        SenderFault: true,
      })),
    },
  }),
};

interface StoredMessage {
  messageId: string;
  body: string;
  md5: string;
  messageAttributes: Record<string, { DataType: string; StringValue?: string }>;
  sentAt: number;
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt: number | undefined;
  /** When the current receive started (12-hour visibility limit). */
  receivedAt: number;
  latestHandle: string | undefined;
}

interface Queue {
  name: string;
  attributes: Record<string, string>;
  createdAt: number;
  messages: Map<string, StoredMessage>;
}

class ApiError extends Error {
  constructor(readonly answer: FakeAnswer) {
    super("api error");
  }
}

const BATCH_ID = /^[A-Za-z0-9_-]{1,80}$/;
const MAX_SIZE = 1024 * 1024;
const DEFAULT_VISIBILITY = "30";

/** Starts the fake on 127.0.0.1 (port 0); see the module doc for usage. */
export async function startFakeSqs(options: FakeSqsOptions = {}): Promise<FakeSqs> {
  const region = options.region ?? "us-east-1";
  const accountId = options.accountId ?? "000000000000";
  const now = options.now ?? Date.now;
  const maxSkewMs = options.maxSkewMs ?? 5 * 60_000;
  const verifyWith = options.verifyWith;
  const closing = new AbortController();

  const requests: RecordedRequest[] = [];
  const scripted = new Map<string, FakeAnswer[]>();
  const defaults = new Map<string, FakeAnswer>();
  const queues = new Map<string, Queue>();
  const handles = new Map<string, { queue: string; messageId: string }>();
  let baseUrl = "";
  let counter = 0;

  const queueUrl = (name: string) => `${baseUrl}/${accountId}/${name}`;
  const arnOf = (name: string) => `arn:aws:sqs:${region}:${accountId}:${name}`;

  function createQueue(name: string, attributes: Record<string, string> = {}): string {
    if (!/^[A-Za-z0-9_-]{1,80}(\.fifo)?$/.test(name)) {
      throw new ApiError(sqsErrorAnswer("InvalidParameterValue", { message: `bad name ${name}` }));
    }
    const existing = queues.get(name);
    if (!existing) {
      queues.set(name, {
        name,
        attributes: { VisibilityTimeout: DEFAULT_VISIBILITY, ...attributes },
        createdAt: now(),
        messages: new Map(),
      });
    }
    return queueUrl(name);
  }

  function queueFromUrl(url: unknown): Queue {
    const name = typeof url === "string" ? url.split("/").filter(Boolean).pop() ?? "" : "";
    const queue = queues.get(name);
    if (!queue) throw new ApiError(faults.queueDoesNotExist());
    return queue;
  }

  function invalid(message: string, code = "InvalidParameterValue"): never {
    throw new ApiError(sqsErrorAnswer(code, { message }));
  }

  function storeMessage(
    queue: Queue,
    body: unknown,
    rawAttributes: unknown,
    delaySeconds: unknown,
  ): StoredMessage {
    if (typeof body !== "string" || body === "") {
      invalid("The request must contain the parameter MessageBody.", "MissingParameter");
    }
    const badInBody = refusedCharacter(body);
    if (badInBody) {
      invalid(
        `Invalid binary character '${badInBody}' was found in the message body, the set of allowed characters is ${ALLOWED_CHARACTERS}`,
        "InvalidMessageContents",
      );
    }
    const attrs: Record<string, { DataType: string; StringValue?: string }> = {};
    let size = new TextEncoder().encode(body).length;
    const entries = Object.entries((rawAttributes ?? {}) as Record<string, unknown>);
    if (entries.length > 10) {
      invalid(`Number of message attributes [${entries.length}] exceeds the allowed maximum [10].`);
    }
    for (const [name, raw] of entries) {
      const value = (raw ?? {}) as Record<string, unknown>;
      const dataType = typeof value.DataType === "string" ? value.DataType : "";
      const stringValue = typeof value.StringValue === "string" ? value.StringValue : "";
      if (!dataType) invalid(`The message attribute '${name}' must contain a non-empty data type.`);
      if (stringValue === "" && typeof value.BinaryValue !== "string") {
        invalid(
          `The message attribute '${name}' must contain a non-empty value of message attribute type '${dataType}'.`,
        );
      }
      const badInValue = refusedCharacter(stringValue);
      if (badInValue) {
        // As SQS refuses a String attribute value outside the body's character set.
        invalid(
          `Message (user) attribute '${name}' value contains invalid binary character '${badInValue}'. You must use only the following supported characters: ${ALLOWED_CHARACTERS}`,
        );
      }
      attrs[name] = { DataType: dataType, StringValue: stringValue };
      size += new TextEncoder().encode(name + dataType + stringValue).length;
    }
    if (size > MAX_SIZE) {
      invalid(
        `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_SIZE} bytes.`,
      );
    }
    const t = now();
    const message: StoredMessage = {
      messageId: crypto.randomUUID(),
      body,
      md5: createHash("md5").update(body).digest("hex"),
      messageAttributes: attrs,
      sentAt: t,
      visibleAt: t + (typeof delaySeconds === "number" ? delaySeconds * 1000 : 0),
      receiveCount: 0,
      firstReceiveAt: undefined,
      receivedAt: 0,
      latestHandle: undefined,
    };
    queue.messages.set(message.messageId, message);
    return message;
  }

  function checkBatch(entries: unknown): Array<Record<string, unknown>> {
    if (!Array.isArray(entries) || entries.length === 0) {
      invalid("There should be at least one entry in the request.", "EmptyBatchRequest");
    }
    if (entries.length > 10) {
      invalid("Maximum number of entries per request are 10.", "TooManyEntriesInBatchRequest");
    }
    const seen = new Set<string>();
    for (const entry of entries as Array<Record<string, unknown>>) {
      const id = entry?.Id;
      if (typeof id !== "string" || !BATCH_ID.test(id)) {
        invalid(
          `A batch entry id can only contain alphanumeric characters, hyphens and underscores.`,
          "InvalidBatchEntryId",
        );
      }
      if (seen.has(id)) invalid(`Id ${id} repeated.`, "BatchEntryIdsNotDistinct");
      seen.add(id);
    }
    return entries as Array<Record<string, unknown>>;
  }

  function receiveNow(queue: Queue, max: number, visibilitySeconds: number, wanted: unknown) {
    const t = now();
    const out: Array<Record<string, unknown>> = [];
    const redrive = parseRedrive(queue.attributes.RedrivePolicy);
    for (const message of [...queue.messages.values()]) {
      if (out.length >= max) break;
      if (message.visibleAt > t) continue;
      if (redrive && message.receiveCount >= redrive.maxReceiveCount) {
        const dlq = queues.get(redrive.dlqName);
        if (dlq) {
          // SQS moves a message that exceeded maxReceiveCount instead of delivering it again.
          queue.messages.delete(message.messageId);
          message.visibleAt = t;
          message.latestHandle = undefined;
          dlq.messages.set(message.messageId, message);
          continue;
        }
      }
      message.receiveCount++;
      message.firstReceiveAt ??= t;
      message.receivedAt = t;
      message.visibleAt = t + visibilitySeconds * 1000;
      const handle = `${message.messageId}#${++counter}#${crypto.randomUUID()}`;
      message.latestHandle = handle;
      handles.set(handle, { queue: queue.name, messageId: message.messageId });
      out.push({
        MessageId: message.messageId,
        ReceiptHandle: handle,
        MD5OfBody: message.md5,
        Body: message.body,
        Attributes: {
          ApproximateReceiveCount: String(message.receiveCount),
          SentTimestamp: String(message.sentAt),
          ApproximateFirstReceiveTimestamp: String(message.firstReceiveAt),
        },
        ...pickAttributes(message.messageAttributes, wanted),
      });
    }
    return out;
  }

  /** Errors: ReceiptHandleIsInvalid (unknown), MessageNotInflight (not in flight / stale). */
  function changeVisibility(queue: Queue, handle: unknown, seconds: unknown): void {
    if (typeof seconds !== "number" || seconds < 0 || seconds > 43200) {
      invalid(`Value ${seconds} for parameter VisibilityTimeout is invalid.`);
    }
    const ref = typeof handle === "string" ? handles.get(handle) : undefined;
    if (!ref || ref.queue !== queue.name) throw new ApiError(faults.receiptHandleIsInvalid());
    const message = queue.messages.get(ref.messageId);
    const t = now();
    if (!message || message.latestHandle !== handle || message.visibleAt <= t) {
      throw new ApiError(faults.messageNotInflight());
    }
    if (t + seconds * 1000 > message.receivedAt + 43200 * 1000) {
      invalid(
        `Value ${seconds} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds].`,
      );
    }
    message.visibleAt = t + seconds * 1000;
  }

  /** A stale handle (message received again since) succeeds without deleting, as in SQS. */
  function deleteByHandle(queue: Queue, handle: unknown): void {
    const ref = typeof handle === "string" ? handles.get(handle) : undefined;
    if (!ref || ref.queue !== queue.name) throw new ApiError(faults.receiptHandleIsInvalid());
    const message = queue.messages.get(ref.messageId);
    if (message && message.latestHandle === handle) queue.messages.delete(ref.messageId);
  }

  function batchFailure(id: string, err: unknown) {
    if (!(err instanceof ApiError)) throw err;
    const body = err.answer.body as { __type: string; message: string };
    return {
      Id: id,
      Code: body.__type.split("#").pop() ?? "",
      Message: body.message,
      SenderFault: (err.answer.status ?? 400) < 500,
    };
  }

  function queueAttributes(queue: Queue, names: unknown): Record<string, string> {
    const t = now();
    let visible = 0, inflight = 0, delayed = 0;
    for (const m of queue.messages.values()) {
      if (m.visibleAt <= t) visible++;
      else if (m.receiveCount > 0) inflight++;
      else delayed++;
    }
    const all: Record<string, string> = {
      ...queue.attributes,
      QueueArn: arnOf(queue.name),
      ApproximateNumberOfMessages: String(visible),
      ApproximateNumberOfMessagesNotVisible: String(inflight),
      ApproximateNumberOfMessagesDelayed: String(delayed),
      CreatedTimestamp: String(Math.floor(queue.createdAt / 1000)),
    };
    const wanted = Array.isArray(names) ? names as string[] : [];
    if (wanted.includes("All")) return all;
    const out: Record<string, string> = {};
    for (const name of wanted) if (all[name] !== undefined) out[name] = all[name];
    return out;
  }

  async function service(
    action: string,
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<unknown> {
    switch (action) {
      case "CreateQueue":
        return {
          QueueUrl: createQueue(String(body.QueueName ?? ""), stringMap(body.Attributes)),
        };
      case "GetQueueUrl": {
        const name = String(body.QueueName ?? "");
        if (!queues.has(name)) throw new ApiError(faults.queueDoesNotExist());
        return { QueueUrl: queueUrl(name) };
      }
      case "GetQueueAttributes":
        return { Attributes: queueAttributes(queueFromUrl(body.QueueUrl), body.AttributeNames) };
      case "PurgeQueue":
        queueFromUrl(body.QueueUrl).messages.clear();
        return {};
      case "SendMessage": {
        const message = storeMessage(
          queueFromUrl(body.QueueUrl),
          body.MessageBody,
          body.MessageAttributes,
          body.DelaySeconds,
        );
        return { MessageId: message.messageId, MD5OfMessageBody: message.md5 };
      }
      case "SendMessageBatch": {
        const queue = queueFromUrl(body.QueueUrl);
        const Successful: unknown[] = [], Failed: unknown[] = [];
        for (const entry of checkBatch(body.Entries)) {
          const id = String(entry.Id);
          try {
            const m = storeMessage(
              queue,
              entry.MessageBody,
              entry.MessageAttributes,
              entry.DelaySeconds,
            );
            Successful.push({ Id: id, MessageId: m.messageId, MD5OfMessageBody: m.md5 });
          } catch (err) {
            Failed.push(batchFailure(id, err));
          }
        }
        return { Successful, Failed };
      }
      case "ReceiveMessage": {
        const queue = queueFromUrl(body.QueueUrl);
        const max = typeof body.MaxNumberOfMessages === "number" ? body.MaxNumberOfMessages : 1;
        if (max < 1 || max > 10) {
          invalid(`Value ${max} for parameter MaxNumberOfMessages is invalid.`);
        }
        const wait = typeof body.WaitTimeSeconds === "number"
          ? body.WaitTimeSeconds
          : Number(queue.attributes.ReceiveMessageWaitTimeSeconds ?? 0);
        if (wait < 0 || wait > 20) {
          invalid(`Value ${wait} for parameter WaitTimeSeconds is invalid.`);
        }
        const visibility = typeof body.VisibilityTimeout === "number"
          ? body.VisibilityTimeout
          : Number(queue.attributes.VisibilityTimeout ?? DEFAULT_VISIBILITY);
        const deadline = Date.now() + wait * 1000;
        for (;;) {
          const got = receiveNow(queue, max, visibility, body.MessageAttributeNames);
          if (got.length > 0 || Date.now() >= deadline || signal.aborted) return { Messages: got };
          await pause(Math.min(10, deadline - Date.now()), signal);
        }
      }
      case "DeleteMessage":
        deleteByHandle(queueFromUrl(body.QueueUrl), body.ReceiptHandle);
        return {};
      case "DeleteMessageBatch": {
        const queue = queueFromUrl(body.QueueUrl);
        const Successful: unknown[] = [], Failed: unknown[] = [];
        for (const entry of checkBatch(body.Entries)) {
          const id = String(entry.Id);
          try {
            deleteByHandle(queue, entry.ReceiptHandle);
            Successful.push({ Id: id });
          } catch (err) {
            Failed.push(batchFailure(id, err));
          }
        }
        return { Successful, Failed };
      }
      case "ChangeMessageVisibility":
        changeVisibility(queueFromUrl(body.QueueUrl), body.ReceiptHandle, body.VisibilityTimeout);
        return {};
      case "ChangeMessageVisibilityBatch": {
        const queue = queueFromUrl(body.QueueUrl);
        const Successful: unknown[] = [], Failed: unknown[] = [];
        for (const entry of checkBatch(body.Entries)) {
          const id = String(entry.Id);
          try {
            changeVisibility(queue, entry.ReceiptHandle, entry.VisibilityTimeout);
            Successful.push({ Id: id });
          } catch (err) {
            Failed.push(batchFailure(id, err));
          }
        }
        return { Successful, Failed };
      }
      default:
        throw new ApiError({
          status: 400,
          body: {
            __type: "com.amazon.coral.service#UnknownOperationException",
            message: `Unknown operation ${action}`,
          },
        });
    }
  }

  async function checkSignature(
    request: Request,
    rawBody: string,
  ): Promise<FakeAnswer | undefined> {
    if (!verifyWith) return undefined;
    const deny = (code: string, message: string, status = 403) =>
      sqsErrorAnswer(code, { status, message, headers: { date: new Date(now()).toUTCString() } });
    const auth = request.headers.get("authorization") ?? "";
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/
        .exec(auth);
    if (!m) return deny("MissingAuthenticationToken", "Request is missing Authentication Token");
    const [, keyId, day, scopeRegion, scopeService, signedHeaders, signature] =
      m as unknown as string[];
    if (keyId !== verifyWith.accessKeyId) {
      return deny("InvalidClientTokenId", "The security token included in the request is invalid.");
    }
    if (verifyWith.sessionToken !== undefined) {
      if (request.headers.get("x-amz-security-token") !== verifyWith.sessionToken) {
        return deny(
          "InvalidClientTokenId",
          "The security token included in the request is invalid.",
        );
      }
    }
    const amzDate = request.headers.get("x-amz-date") ?? "";
    const signedList = (signedHeaders ?? "").split(";");
    if (!signedList.includes("host") || !signedList.includes("x-amz-date")) {
      return deny("SignatureDoesNotMatch", "host and x-amz-date must be signed");
    }
    if (
      signedList.includes("x-amz-security-token") === false &&
      request.headers.has("x-amz-security-token")
    ) {
      return deny("SignatureDoesNotMatch", "x-amz-security-token must be signed");
    }
    const expected = await sigv4Signature({
      method: request.method,
      url: new URL(request.url),
      headers: request.headers,
      signedHeaders: signedList,
      body: rawBody,
      secretAccessKey: verifyWith.secretAccessKey,
      amzDate,
      scope: `${day}/${scopeRegion}/${scopeService}/aws4_request`,
    });
    if (
      scopeRegion !== region || scopeService !== "sqs" || day !== amzDate.slice(0, 8) ||
      expected !== signature
    ) {
      return deny(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
      );
    }
    const requestTime = parseAmzDate(amzDate);
    const serverTime = now();
    if (requestTime === undefined || Math.abs(requestTime - serverTime) > maxSkewMs) {
      return deny(
        "SignatureDoesNotMatch",
        `Signature expired: ${amzDate} is now earlier than ${amzDateOf(serverTime - maxSkewMs)} (${
          amzDateOf(serverTime)
        } - 5 min.)`,
      );
    }
    return undefined;
  }

  function nextScripted(action: string): FakeAnswer | undefined {
    for (const key of [action, "*"]) {
      const list = scripted.get(key);
      if (list && list.length > 0) return list.shift();
    }
    return defaults.get(action) ?? defaults.get("*");
  }

  async function handle(request: Request): Promise<Response> {
    const rawBody = await request.text();
    const target = request.headers.get("x-amz-target") ?? "";
    const action = target.startsWith("AmazonSQS.") ? target.slice("AmazonSQS.".length) : "";
    const record: RecordedRequest = {
      action,
      method: request.method,
      path: new URL(request.url).pathname,
      headers: Object.fromEntries(request.headers),
      rawBody,
      body: parseObject(rawBody),
      receivedAt: now(),
    };
    requests.push(record);
    // Long polls and delays end when the fake closes. Like SQS, a poll the client gave up on
    // still runs to its end (and may take messages, which reappear after their visibility).
    const signal = closing.signal;

    let answer: FakeAnswer | undefined;
    const denied = await checkSignature(request, rawBody);
    if (verifyWith) record.signatureValid = denied === undefined;
    answer = denied ?? nextScripted(action);
    if (answer?.delayMs) await pause(answer.delayMs, signal);
    if (!answer || answer.passThrough) {
      try {
        answer = { body: await service(action, record.body ?? {}, signal) };
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        answer = err.answer;
      }
    }
    record.status = answer.status ?? 200;
    return toResponse(answer, now());
  }

  const listening = Promise.withResolvers<void>();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => listening.resolve() },
    handle,
  );
  await listening.promise;
  baseUrl = `http://127.0.0.1:${server.addr.port}`;
  for (const [name, attributes] of Object.entries(options.queues ?? {})) {
    createQueue(name, attributes);
  }

  return {
    url: baseUrl,
    requests,
    respond(action, ...answers) {
      const list = scripted.get(action) ?? [];
      list.push(...answers);
      scripted.set(action, list);
    },
    setDefault(action, answer) {
      if (answer) defaults.set(action, answer);
      else defaults.delete(action);
    },
    createQueue: (name, attributes) => createQueue(name, attributes),
    queueUrl,
    send(queueName, body, messageAttributes = {}) {
      const queue = queueFromUrl(queueName);
      const attrs = Object.fromEntries(
        Object.entries(messageAttributes).map((
          [k, v],
        ) => [k, { DataType: "String", StringValue: v }]),
      );
      return storeMessage(queue, body, attrs, 0).messageId;
    },
    messages(queueName) {
      const queue = queues.get(queueName);
      if (!queue) return [];
      const t = now();
      return [...queue.messages.values()].map((m) => ({
        messageId: m.messageId,
        body: m.body,
        messageAttributes: structuredClone(m.messageAttributes),
        receiveCount: m.receiveCount,
        sentAt: m.sentAt,
        visible: m.visibleAt <= t,
      }));
    },
    requestsFor: (action) => requests.filter((r) => r.action === action),
    async close() {
      closing.abort();
      await server.shutdown();
    },
  };
}

function toResponse(answer: FakeAnswer, nowMs: number): Response {
  const headers = new Headers({
    "content-type": "application/x-amz-json-1.0",
    "x-amzn-requestid": crypto.randomUUID(),
    date: new Date(nowMs).toUTCString(),
  });
  for (const [k, v] of Object.entries(answer.headers ?? {})) headers.set(k, v);
  const status = answer.status ?? 200;
  if (answer.breakConnection) {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"Messages":['));
      },
      pull(controller) {
        controller.error(new Error("connection broken by the fake"));
      },
    });
    return new Response(stream, { status, headers });
  }
  const body = answer.body === undefined
    ? "{}"
    : typeof answer.body === "string"
    ? answer.body
    : JSON.stringify(answer.body);
  return new Response(body, { status, headers });
}

/** SQS's character set for bodies and String attribute values, as its errors spell it. */
const ALLOWED_CHARACTERS =
  "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF";

/** The first character SQS refuses, as `#xD83D`; undefined when all are allowed. A lone
 * surrogate (sent as a `\ud83d` JSON escape) is refused like a control character. */
function refusedCharacter(text: string): string | undefined {
  for (const char of text) {
    const cp = char.codePointAt(0)!;
    const ok = cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
      (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
    if (!ok) return `#x${cp.toString(16).toUpperCase()}`;
  }
  return undefined;
}

function pickAttributes(
  attrs: Record<string, { DataType: string; StringValue?: string }>,
  wanted: unknown,
): { MessageAttributes?: Record<string, unknown> } {
  const names = Array.isArray(wanted) ? wanted as string[] : [];
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(attrs)) {
    if (names.includes("All") || names.includes(".*") || names.includes(name)) out[name] = value;
  }
  return Object.keys(out).length > 0 ? { MessageAttributes: out } : {};
}

function parseRedrive(policy: string | undefined) {
  if (!policy) return undefined;
  try {
    const p = JSON.parse(policy) as { deadLetterTargetArn?: string; maxReceiveCount?: unknown };
    const dlqName = p.deadLetterTargetArn?.split(":").pop();
    const maxReceiveCount = Number(p.maxReceiveCount);
    if (!dlqName || !Number.isFinite(maxReceiveCount)) return undefined;
    return { dlqName, maxReceiveCount };
  } catch {
    return undefined;
  }
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((value ?? {}) as Record<string, unknown>)) out[k] = String(v);
  return out;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v)
      ? v as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

/** Abortable wait that resolves (never rejects) and clears its timer. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

function amzDateOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, "");
}

function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

const encoder = new TextEncoder();

async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
}

async function hmac(key: Uint8Array, data: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(data)));
}

function hex(buffer: ArrayBuffer | Uint8Array): string {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** RFC 3986 encoding as SigV4 wants it (unreserved characters kept). */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

/**
 * SigV4 signature computed from the AWS specification, independently of the client's signer:
 * canonical request -> string to sign -> HMAC chain.
 */
export async function sigv4Signature(p: {
  method: string;
  url: URL;
  headers: Headers;
  signedHeaders: string[];
  body: string;
  secretAccessKey: string;
  amzDate: string;
  /** yyyymmdd/region/service/aws4_request */
  scope: string;
}): Promise<string> {
  // Non-S3 services encode each path segment twice.
  const path = p.url.pathname.split("/").map((s) => uriEncode(uriEncode(decodeURIComponent(s))))
    .join("/") || "/";
  const query = [...p.url.searchParams]
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonicalHeaders = p.signedHeaders
    .map((name) => {
      const value = name === "host"
        ? p.headers.get("host") ?? p.url.host
        : p.headers.get(name) ?? "";
      return `${name}:${value.trim().replace(/\s+/g, " ")}\n`;
    })
    .join("");
  const canonicalRequest = [
    p.method.toUpperCase(),
    path,
    query,
    canonicalHeaders,
    p.signedHeaders.join(";"),
    await sha256Hex(p.body),
  ].join("\n");
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    p.amzDate,
    p.scope,
    await sha256Hex(canonicalRequest),
  ].join("\n");
  const [day, region, service] = p.scope.split("/");
  let key = await hmac(encoder.encode("AWS4" + p.secretAccessKey), day ?? "");
  key = await hmac(key, region ?? "");
  key = await hmac(key, service ?? "");
  key = await hmac(key, "aws4_request");
  return hex(await hmac(key, stringToSign));
}
