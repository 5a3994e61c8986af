/**
 * The fake SQS's in-memory queue service: queues, messages, receipt handles, visibility,
 * receive counts and redrive (with the DeadLetterQueueSourceArn SQS sets on a moved message,
 * and ListDeadLetterSourceQueues), with SQS's validation of batch ids, empty attribute values,
 * the 10-attribute and 1 MiB limits (per message and per SendMessageBatch, BatchRequestTooLong)
 * and the 12-hour visibility limit. No HTTP here: `service` takes
 * an action and its JSON body and returns the JSON answer, or throws an ApiError.
 */
import { createHash } from "node:crypto";
import { type FakeAnswer, faults, sqsErrorAnswer } from "./answers.ts";

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
  /** Set when the redrive policy moved it: the ARN of the queue it came from. */
  sourceArn?: string;
}

interface Queue {
  name: string;
  attributes: Record<string, string>;
  createdAt: number;
  messages: Map<string, StoredMessage>;
}

export class ApiError extends Error {
  constructor(readonly answer: FakeAnswer) {
    super("api error");
  }
}

const BATCH_ID = /^[A-Za-z0-9_-]{1,80}$/;
const MAX_SIZE = 1024 * 1024;
const DEFAULT_VISIBILITY = "30";

function invalid(message: string, code = "InvalidParameterValue"): never {
  throw new ApiError(sqsErrorAnswer(code, { message }));
}

export interface SqsModelOptions {
  region: string;
  accountId: string;
  now: () => number;
}

export class SqsModel {
  readonly queues = new Map<string, Queue>();
  readonly handles = new Map<string, { queue: string; messageId: string }>();
  readonly now: () => number;
  /** Set once the server listens: the origin of queue URLs. */
  baseUrl = "";
  readonly #region: string;
  readonly #accountId: string;
  #counter = 0;

  constructor(o: SqsModelOptions) {
    this.now = o.now;
    this.#region = o.region;
    this.#accountId = o.accountId;
  }

  queueUrl(name: string): string {
    return `${this.baseUrl}/${this.#accountId}/${name}`;
  }

  arnOf(name: string): string {
    return `arn:aws:sqs:${this.#region}:${this.#accountId}:${name}`;
  }

  createQueue(name: string, attributes: Record<string, string> = {}): string {
    if (!/^[A-Za-z0-9_-]{1,80}(\.fifo)?$/.test(name)) {
      throw new ApiError(sqsErrorAnswer("InvalidParameterValue", { message: `bad name ${name}` }));
    }
    const existing = this.queues.get(name);
    if (!existing) {
      this.queues.set(name, {
        name,
        attributes: { VisibilityTimeout: DEFAULT_VISIBILITY, ...attributes },
        createdAt: this.now(),
        messages: new Map(),
      });
    }
    return this.queueUrl(name);
  }

  queueFromUrl(url: unknown): Queue {
    const name = typeof url === "string" ? url.split("/").filter(Boolean).pop() ?? "" : "";
    const queue = this.queues.get(name);
    if (!queue) throw new ApiError(faults.queueDoesNotExist());
    return queue;
  }

  storeMessage(
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
    const t = this.now();
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

  receiveNow(
    queue: Queue,
    max: number,
    visibilitySeconds: number,
    wanted: unknown,
    systemWanted: string[] = [],
  ) {
    const t = this.now();
    const out: Array<Record<string, unknown>> = [];
    const redrive = parseRedrive(queue.attributes.RedrivePolicy);
    for (const message of [...queue.messages.values()]) {
      if (out.length >= max) break;
      if (message.visibleAt > t) continue;
      if (redrive && message.receiveCount >= redrive.maxReceiveCount) {
        const dlq = this.queues.get(redrive.dlqName);
        if (dlq) {
          // SQS moves a message that exceeded maxReceiveCount instead of delivering it again.
          queue.messages.delete(message.messageId);
          message.visibleAt = t;
          message.latestHandle = undefined;
          message.sourceArn = this.arnOf(queue.name);
          dlq.messages.set(message.messageId, message);
          continue;
        }
      }
      message.receiveCount++;
      message.firstReceiveAt ??= t;
      message.receivedAt = t;
      message.visibleAt = t + visibilitySeconds * 1000;
      const handle = `${message.messageId}#${++this.#counter}#${crypto.randomUUID()}`;
      message.latestHandle = handle;
      this.handles.set(handle, { queue: queue.name, messageId: message.messageId });
      out.push({
        MessageId: message.messageId,
        ReceiptHandle: handle,
        MD5OfBody: message.md5,
        Body: message.body,
        Attributes: {
          ApproximateReceiveCount: String(message.receiveCount),
          SentTimestamp: String(message.sentAt),
          ApproximateFirstReceiveTimestamp: String(message.firstReceiveAt),
          // As SQS, only when asked for.
          ...(message.sourceArn && systemWanted.some((n) => n === "All" || n === SOURCE_ARN)
            ? { [SOURCE_ARN]: message.sourceArn }
            : {}),
        },
        ...pickAttributes(message.messageAttributes, wanted),
      });
    }
    return out;
  }

  /** Errors: ReceiptHandleIsInvalid (unknown), MessageNotInflight (not in flight / stale). */
  changeVisibility(queue: Queue, handle: unknown, seconds: unknown): void {
    if (typeof seconds !== "number" || seconds < 0 || seconds > 43200) {
      invalid(`Value ${seconds} for parameter VisibilityTimeout is invalid.`);
    }
    const ref = typeof handle === "string" ? this.handles.get(handle) : undefined;
    if (!ref || ref.queue !== queue.name) throw new ApiError(faults.receiptHandleIsInvalid());
    const message = queue.messages.get(ref.messageId);
    const t = this.now();
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
  deleteByHandle(queue: Queue, handle: unknown): void {
    const ref = typeof handle === "string" ? this.handles.get(handle) : undefined;
    if (!ref || ref.queue !== queue.name) throw new ApiError(faults.receiptHandleIsInvalid());
    const message = queue.messages.get(ref.messageId);
    if (message && message.latestHandle === handle) queue.messages.delete(ref.messageId);
  }

  queueAttributes(queue: Queue, names: unknown): Record<string, string> {
    const t = this.now();
    let visible = 0, inflight = 0, delayed = 0;
    for (const m of queue.messages.values()) {
      if (m.visibleAt <= t) visible++;
      else if (m.receiveCount > 0) inflight++;
      else delayed++;
    }
    const all: Record<string, string> = {
      ...queue.attributes,
      QueueArn: this.arnOf(queue.name),
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

  /** What a queue holds now (not deleted), in arrival order. */
  snapshot(queueName: string) {
    const queue = this.queues.get(queueName);
    if (!queue) return [];
    const t = this.now();
    return [...queue.messages.values()].map((m) => ({
      messageId: m.messageId,
      body: m.body,
      messageAttributes: structuredClone(m.messageAttributes),
      receiveCount: m.receiveCount,
      sentAt: m.sentAt,
      visible: m.visibleAt <= t,
    }));
  }

  /** One action of the JSON protocol; throws ApiError for SQS's error answers. */
  service(action: string, body: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const handler = this.#actions[action];
    if (!handler) {
      throw new ApiError({
        status: 400,
        body: {
          __type: "com.amazon.coral.service#UnknownOperationException",
          message: `Unknown operation ${action}`,
        },
      });
    }
    return Promise.resolve(handler(body, signal));
  }

  /** Runs `each` per batch entry, collecting SQS's Successful and Failed lists. */
  #batch(
    body: Record<string, unknown>,
    each: (queue: Queue, entry: Record<string, unknown>) => Record<string, unknown>,
  ) {
    const queue = this.queueFromUrl(body.QueueUrl);
    const Successful: unknown[] = [], Failed: unknown[] = [];
    for (const entry of checkBatch(body.Entries)) {
      const id = String(entry.Id);
      try {
        Successful.push({ Id: id, ...each(queue, entry) });
      } catch (err) {
        Failed.push(batchFailure(id, err));
      }
    }
    return { Successful, Failed };
  }

  #send = (queue: Queue, entry: Record<string, unknown>) => {
    const m = this.storeMessage(
      queue,
      entry.MessageBody,
      entry.MessageAttributes,
      entry.DelaySeconds,
    );
    return { MessageId: m.messageId, MD5OfMessageBody: m.md5 };
  };

  async #receive(body: Record<string, unknown>, signal: AbortSignal) {
    const queue = this.queueFromUrl(body.QueueUrl);
    const max = typeof body.MaxNumberOfMessages === "number" ? body.MaxNumberOfMessages : 1;
    if (max < 1 || max > 10) invalid(`Value ${max} for parameter MaxNumberOfMessages is invalid.`);
    const wait = typeof body.WaitTimeSeconds === "number"
      ? body.WaitTimeSeconds
      : Number(queue.attributes.ReceiveMessageWaitTimeSeconds ?? 0);
    if (wait < 0 || wait > 20) invalid(`Value ${wait} for parameter WaitTimeSeconds is invalid.`);
    const visibility = typeof body.VisibilityTimeout === "number"
      ? body.VisibilityTimeout
      : Number(queue.attributes.VisibilityTimeout ?? DEFAULT_VISIBILITY);
    const deadline = Date.now() + wait * 1000;
    const systemWanted = [body.AttributeNames, body.MessageSystemAttributeNames]
      .flatMap((names) => Array.isArray(names) ? names.map(String) : []);
    for (;;) {
      const got = this.receiveNow(queue, max, visibility, body.MessageAttributeNames, systemWanted);
      if (got.length > 0 || Date.now() >= deadline || signal.aborted) return { Messages: got };
      await pause(Math.min(10, deadline - Date.now()), signal);
    }
  }

  readonly #actions: Record<
    string,
    (body: Record<string, unknown>, signal: AbortSignal) => unknown
  > = {
    CreateQueue: (b) => ({
      QueueUrl: this.createQueue(String(b.QueueName ?? ""), stringMap(b.Attributes)),
    }),
    GetQueueUrl: (b) => {
      const name = String(b.QueueName ?? "");
      if (!this.queues.has(name)) throw new ApiError(faults.queueDoesNotExist());
      return { QueueUrl: this.queueUrl(name) };
    },
    GetQueueAttributes: (b) => ({
      Attributes: this.queueAttributes(this.queueFromUrl(b.QueueUrl), b.AttributeNames),
    }),
    PurgeQueue: (b) => (this.queueFromUrl(b.QueueUrl).messages.clear(), {}),
    SendMessage: (b) => this.#send(this.queueFromUrl(b.QueueUrl), b),
    SendMessageBatch: (b) => (checkBatchBytes(b.Entries), this.#batch(b, this.#send)),
    ListDeadLetterSourceQueues: (b) => {
      const dlq = this.queueFromUrl(b.QueueUrl);
      const queueUrls = [...this.queues.values()]
        .filter((q) => parseRedrive(q.attributes.RedrivePolicy)?.dlqName === dlq.name)
        .map((q) => this.queueUrl(q.name));
      return { queueUrls };
    },
    ReceiveMessage: (b, signal) => this.#receive(b, signal),
    DeleteMessage: (b) => (this.deleteByHandle(this.queueFromUrl(b.QueueUrl), b.ReceiptHandle), {}),
    DeleteMessageBatch: (b) =>
      this.#batch(b, (queue, e) => (this.deleteByHandle(queue, e.ReceiptHandle), {})),
    ChangeMessageVisibility: (b) => (
      this.changeVisibility(this.queueFromUrl(b.QueueUrl), b.ReceiptHandle, b.VisibilityTimeout), {}
    ),
    ChangeMessageVisibilityBatch: (b) =>
      this.#batch(b, (queue, e) => (
        this.changeVisibility(queue, e.ReceiptHandle, e.VisibilityTimeout), {}
      )),
  };
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

const SOURCE_ARN = "DeadLetterQueueSourceArn";

/** SQS refuses a SendMessageBatch whose entries together pass 1 MiB, the whole request. */
function checkBatchBytes(entries: unknown): void {
  if (!Array.isArray(entries)) return;
  const encoder = new TextEncoder();
  let size = 0;
  for (const entry of entries as Array<Record<string, unknown>>) {
    size += encoder.encode(String(entry?.MessageBody ?? "")).length;
    for (const [name, raw] of Object.entries((entry?.MessageAttributes ?? {}) as object)) {
      const v = (raw ?? {}) as Record<string, unknown>;
      size += encoder.encode(`${name}${v.DataType ?? ""}${v.StringValue ?? v.BinaryValue ?? ""}`)
        .length;
    }
  }
  if (size > MAX_SIZE) {
    invalid(
      `Batch requests cannot be longer than ${MAX_SIZE} bytes. You have sent ${size} bytes.`,
      "BatchRequestTooLong",
    );
  }
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

export function parseObject(text: string): Record<string, unknown> | undefined {
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
export function pause(ms: number, signal: AbortSignal): Promise<void> {
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
