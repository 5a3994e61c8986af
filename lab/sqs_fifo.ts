/**
 * FIFO queues in the SQS proxy (lab/sqs_proxy.ts). fauxqs 2.4.1 hands out one message per
 * message group per receive and ignores ReceiveRequestAttemptId, so the proxy keeps the messages
 * of `.fifo` queues itself; fauxqs still holds the queues (CreateQueue, GetQueueUrl, their
 * attributes). As real SQS:
 * - a receive delivers up to MaxNumberOfMessages of one MessageGroupId, in order: the group of
 *   the oldest visible message whose group has nothing in flight. No more of a group is delivered
 *   while any of it is in flight; a message whose visibility ran out is its group's next again.
 * - ReceiveRequestAttemptId: a receive retried with the same id within 5 minutes, while none of
 *   its messages was deleted or had its visibility changed, answers the same messages and receipt
 *   handles again and restarts their visibility; after such a change it is a new receive.
 * - MessageDeduplicationId (or ContentBasedDeduplication: the body's SHA-256) within 5 minutes:
 *   the first copy's MessageId and SequenceNumber, nothing stored. MessageGroupId is required,
 *   a per-message DelaySeconds refused.
 * - the RedrivePolicy: a message received maxReceiveCount times moves to the DLQ (a FIFO queue,
 *   kept here too) on the next receive, with its group and DeadLetterQueueSourceArn.
 * - a delete with the latest receipt handle deletes (again: no error); with an older one of a
 *   message still there, SQS answers InvalidParameterValue "The receipt handle has expired". A
 *   visibility change beyond 12 h from the receive, or on a message not in flight, is refused
 *   with SQS's texts (the latter as InvalidParameterValue "... not available for visibility
 *   timeout change").
 * Limits: messages must be sent through the proxy (fauxqs holds none of them); a queue's
 * attributes are read from fauxqs on its first use and follow SetQueueAttributes sent through the
 * proxy; no queue delay; DeduplicationScope=messageGroup and high throughput are not modelled;
 * one group per receive even when other groups have messages (SQS may add them).
 */
import { createHash } from "node:crypto";
import { type SqsAnswer, sqsError, sqsFaults } from "./sqs_answers.ts";
import { failedEntry, MAX_BYTES, md5Hex, messageBytes, refusal } from "./sqs_fidelity.ts";

const FIVE_MINUTES = 5 * 60_000;
const TWELVE_HOURS_S = 43_200;

type Body = Record<string, unknown>;

interface FifoMessage {
  messageId: string;
  body: string;
  attributes: Record<string, unknown>;
  groupId: string;
  dedupId: string;
  sequence: string;
  sentAt: number;
  traceHeader: string | undefined;
  sourceArn: string | undefined;
  receiveCount: number;
  firstReceiveAt: number | undefined;
  receivedAt: number;
  /** the latest receive's handle */
  handle: string | undefined;
  visibleAt: number;
  deleted: boolean;
}

interface FifoQueue {
  name: string;
  arn: string;
  attributes: Record<string, string>;
  /** In send order; a deleted message stays (flagged) until the next compaction. */
  messages: FifoMessage[];
  /** Deleted messages still in `messages`. */
  dead: number;
  /** Each group's messages not deleted, in order: a receive reads its group's alone. */
  groups: Map<string, FifoMessage[]>;
  handles: Map<string, FifoMessage>;
  dedup: Map<string, { message: FifoMessage; at: number }>;
  attempts: Map<string, { at: number; handles: string[]; answer: Body[] }>;
  sequence: number;
}

/** An SQS error: the request's answer. */
class Refused extends Error {
  constructor(readonly answer: SqsAnswer) {
    super("refused");
  }
}

export interface FifoOptions {
  now: () => number;
  /** A queue's attributes (QueueArn among them) from fauxqs; undefined when it does not exist. */
  attributesOf: (name: string) => Promise<Record<string, string> | undefined>;
  /** Waits `ms` (long polls), ending early when the proxy closes. */
  pause: (ms: number) => Promise<boolean>;
}

/** The FIFO queues the proxy has seen, by name. */
export class FifoQueues {
  readonly #queues = new Map<string, FifoQueue>();
  readonly #loading = new Map<string, Promise<FifoQueue | undefined>>();
  readonly #o: FifoOptions;

  constructor(options: FifoOptions) {
    this.#o = options;
  }

  static isFifoUrl(queueUrl: unknown): queueUrl is string {
    return typeof queueUrl === "string" && queueUrl.endsWith(".fifo");
  }

  /** One action on a FIFO queue; undefined when fauxqs answers it alone. */
  async handle(action: string, body: Body, signal: AbortSignal): Promise<SqsAnswer | undefined> {
    const run = this.#actions[action];
    if (!run) return undefined;
    try {
      const queue = await this.#queue(nameOf(body.QueueUrl));
      if (!queue) return sqsFaults.queueDoesNotExist();
      return { body: await run(queue, body, signal) };
    } catch (error) {
      if (error instanceof Refused) return error.answer;
      throw error;
    }
  }

  /** Counts for GetQueueAttributes, which fauxqs cannot know. */
  counts(queueUrl: string): Record<string, string> | undefined {
    const queue = this.#queues.get(nameOf(queueUrl));
    if (!queue) return undefined;
    const t = this.#o.now();
    const live = queue.messages.filter((m) => !m.deleted);
    const inFlight = live.filter((m) => m.visibleAt > t).length;
    return {
      ApproximateNumberOfMessages: String(live.length - inFlight),
      ApproximateNumberOfMessagesNotVisible: String(inFlight),
      ApproximateNumberOfMessagesDelayed: "0",
    };
  }

  /** The queue's attributes changed (SetQueueAttributes): read them again on next use. */
  forget(queueUrl: string): void {
    const queue = this.#queues.get(nameOf(queueUrl));
    if (queue) queue.attributes = {};
  }

  /** What a FIFO queue holds (not deleted), in order. */
  snapshot(name: string) {
    const t = this.#o.now();
    return (this.#queues.get(name)?.messages ?? []).filter((m) => !m.deleted).map((m) => ({
      messageId: m.messageId,
      body: m.body,
      messageAttributes: structuredClone(m.attributes),
      receiveCount: m.receiveCount,
      sentAt: m.sentAt,
      visible: m.visibleAt <= t,
      groupId: m.groupId,
    }));
  }

  /** The queue, its attributes read from fauxqs on first use (once, however many ask). */
  #queue(name: string): Promise<FifoQueue | undefined> {
    const known = this.#queues.get(name);
    if (known && Object.keys(known.attributes).length > 0) return Promise.resolve(known);
    let loading = this.#loading.get(name);
    if (!loading) {
      loading = this.#load(name, known).finally(() => this.#loading.delete(name));
      this.#loading.set(name, loading);
    }
    return loading;
  }

  async #load(name: string, known: FifoQueue | undefined): Promise<FifoQueue | undefined> {
    const attributes = await this.#o.attributesOf(name);
    if (!attributes) return undefined;
    const queue = known ?? {
      name,
      arn: attributes.QueueArn ?? "",
      attributes,
      messages: [],
      dead: 0,
      groups: new Map(),
      handles: new Map(),
      dedup: new Map(),
      attempts: new Map(),
      sequence: 0,
    };
    queue.attributes = attributes;
    this.#queues.set(name, queue);
    return queue;
  }

  readonly #actions: Record<
    string,
    (queue: FifoQueue, body: Body, signal: AbortSignal) => unknown
  > = {
    SendMessage: (q, b) => this.#send(q, b),
    SendMessageBatch: (q, b) => {
      const entries = checkBatch(b.Entries);
      const total = entries.reduce(
        (n, e) => n + messageBytes(e.MessageBody, e.MessageAttributes),
        0,
      );
      if (total > MAX_BYTES) throw new Refused(sqsFaults.batchRequestTooLong(total));
      return eachEntry(entries, (e) => this.#send(q, e));
    },
    ReceiveMessage: (q, b, signal) => this.#receive(q, b, signal),
    DeleteMessage: (q, b) => (this.#delete(q, b.ReceiptHandle), {}),
    DeleteMessageBatch: (q, b) =>
      eachEntry(checkBatch(b.Entries), (e) => (this.#delete(q, e.ReceiptHandle), {})),
    ChangeMessageVisibility: (
      q,
      b,
    ) => (this.#visibility(q, b.ReceiptHandle, b.VisibilityTimeout), {}),
    ChangeMessageVisibilityBatch: (q, b) =>
      eachEntry(
        checkBatch(b.Entries),
        (e) => (this.#visibility(q, e.ReceiptHandle, e.VisibilityTimeout), {}),
      ),
    PurgeQueue: (q) => {
      for (const m of q.messages) m.deleted = true;
      q.messages = [];
      q.dead = 0;
      q.groups.clear();
      return {};
    },
  };

  #send(q: FifoQueue, b: Body): Body {
    const refused = refusal(b.MessageBody, b.MessageAttributes);
    if (refused) throw new Refused(refused);
    const body = String(b.MessageBody);
    if (typeof b.MessageGroupId !== "string" || b.MessageGroupId === "") {
      throw new Refused(sqsError("MissingParameter", {
        message: "The request must contain the parameter MessageGroupId.",
      }));
    }
    if (b.DelaySeconds !== undefined && b.DelaySeconds !== 0) {
      invalid(
        `Value ${b.DelaySeconds} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.`,
      );
    }
    const dedupId = typeof b.MessageDeduplicationId === "string"
      ? b.MessageDeduplicationId
      : q.attributes.ContentBasedDeduplication === "true"
      ? createHash("sha256").update(body).digest("hex")
      : invalid(
        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
      );
    const t = this.#o.now();
    const seen = q.dedup.get(dedupId);
    const message = seen && t - seen.at < FIVE_MINUTES
      ? seen.message
      : this.#store(q, body, b, dedupId, t);
    return {
      MessageId: message.messageId,
      MD5OfMessageBody: md5Hex(body),
      SequenceNumber: message.sequence,
    };
  }

  #store(q: FifoQueue, body: string, b: Body, dedupId: string, t: number): FifoMessage {
    const system = (b.MessageSystemAttributes ?? {}) as Record<string, { StringValue?: string }>;
    const message: FifoMessage = {
      messageId: crypto.randomUUID(),
      body,
      attributes: (b.MessageAttributes ?? {}) as Record<string, unknown>,
      groupId: String(b.MessageGroupId),
      dedupId,
      sequence: String(++q.sequence).padStart(20, "0"),
      sentAt: t,
      traceHeader: system.AWSTraceHeader?.StringValue,
      sourceArn: undefined,
      receiveCount: 0,
      firstReceiveAt: undefined,
      receivedAt: 0,
      handle: undefined,
      visibleAt: t,
      deleted: false,
    };
    enqueue(q, message);
    q.dedup.set(dedupId, { message, at: t });
    return message;
  }

  async #receive(q: FifoQueue, b: Body, signal: AbortSignal): Promise<Body> {
    const max = typeof b.MaxNumberOfMessages === "number" ? b.MaxNumberOfMessages : 1;
    if (max < 1 || max > 10) {
      invalid(
        `Value ${max} for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10.`,
      );
    }
    const wait = typeof b.WaitTimeSeconds === "number"
      ? b.WaitTimeSeconds
      : Number(q.attributes.ReceiveMessageWaitTimeSeconds ?? 0);
    const visibility = typeof b.VisibilityTimeout === "number"
      ? b.VisibilityTimeout
      : Number(q.attributes.VisibilityTimeout ?? 30);
    const attemptId = typeof b.ReceiveRequestAttemptId === "string"
      ? b.ReceiveRequestAttemptId
      : "";
    const replay = attemptId ? this.#replay(q, attemptId, visibility) : undefined;
    if (replay) return { Messages: replay };
    let taken = await this.#take(q, max, visibility);
    for (
      let waited = 0;
      taken.length === 0 && waited < wait * 1000 && !signal.aborted;
      waited += 20
    ) {
      if (!(await this.#o.pause(20))) break;
      taken = await this.#take(q, max, visibility);
    }
    const answer = taken.map((m) => render(m, b));
    if (attemptId) {
      q.attempts.set(attemptId, {
        at: this.#o.now(),
        handles: taken.map((m) => m.handle!),
        answer,
      });
    }
    return taken.length > 0 ? { Messages: answer } : {};
  }

  /** The answer of an earlier receive with this attempt id, when SQS would give it again. */
  #replay(q: FifoQueue, attemptId: string, visibility: number): Body[] | undefined {
    const t = this.#o.now();
    const attempt = q.attempts.get(attemptId);
    if (!attempt || t - attempt.at >= FIVE_MINUTES) return undefined;
    const messages = attempt.handles.map((h) => q.handles.get(h));
    const untouched = messages.every((m, i) =>
      m && !m.deleted && m.handle === attempt.handles[i] && m.visibleAt > t
    );
    if (!untouched) return undefined;
    for (const m of messages) m!.visibleAt = t + visibility * 1000;
    return attempt.answer;
  }

  /**
   * Up to `max` messages of the first free group (the group of the oldest message whose group
   * has none in flight), now in flight. The lab's own cost per receive stays small: a scan from
   * the oldest message to the first free group, then that group's list.
   */
  async #take(q: FifoQueue, max: number, visibility: number): Promise<FifoMessage[]> {
    const t = this.#o.now();
    const group = firstFreeGroup(q, t);
    const taken: FifoMessage[] = [];
    for (const m of group ? [...group] : []) {
      if (taken.length >= max) break;
      if (await this.#redriven(q, m)) continue;
      m.receiveCount++;
      m.firstReceiveAt ??= t;
      m.receivedAt = t;
      m.visibleAt = t + visibility * 1000;
      m.handle = `${crypto.randomUUID()}#${m.receiveCount}`;
      q.handles.set(m.handle, m);
      taken.push(m);
    }
    return taken;
  }

  /** Moves `m` to the DLQ when the RedrivePolicy says it has been received enough. */
  async #redriven(q: FifoQueue, m: FifoMessage): Promise<boolean> {
    let policy: { deadLetterTargetArn?: string; maxReceiveCount?: unknown } = {};
    try {
      policy = JSON.parse(q.attributes.RedrivePolicy ?? "{}");
    } catch {
      return false;
    }
    const max = Number(policy.maxReceiveCount);
    if (!policy.deadLetterTargetArn || !(m.receiveCount >= max)) return false;
    const dlq = await this.#queue(policy.deadLetterTargetArn.split(":").pop() ?? "");
    if (!dlq) return false;
    leaveGroup(q, m);
    q.messages = q.messages.filter((x) => x !== m);
    Object.assign(m, { sourceArn: q.arn, handle: undefined, visibleAt: this.#o.now() });
    m.sequence = String(++dlq.sequence).padStart(20, "0");
    enqueue(dlq, m);
    return true;
  }

  #delete(q: FifoQueue, handle: unknown): void {
    const m = typeof handle === "string" ? q.handles.get(handle) : undefined;
    if (!m) throw new Refused(sqsFaults.receiptHandleIsInvalid(String(handle)));
    if (m.deleted) return;
    if (m.handle !== handle) {
      invalid(
        `Value ${handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.`,
      );
    }
    remove(q, m);
  }

  #visibility(q: FifoQueue, handle: unknown, seconds: unknown): void {
    if (typeof seconds !== "number" || seconds < 0 || seconds > TWELVE_HOURS_S) {
      invalid(
        `Value ${seconds} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.`,
      );
    }
    const m = typeof handle === "string" ? q.handles.get(handle) : undefined;
    if (!m) throw new Refused(sqsFaults.receiptHandleIsInvalid(String(handle)));
    const t = this.#o.now();
    if (m.deleted || m.handle !== handle || m.visibleAt <= t) {
      throw new Refused(sqsFaults.staleVisibility(String(handle)));
    }
    if (t + seconds * 1000 > m.receivedAt + TWELVE_HOURS_S * 1000) {
      invalid(
        `Value ${seconds} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds].`,
      );
    }
    m.visibleAt = t + seconds * 1000;
  }
}

function invalid(message: string): never {
  throw new Refused(sqsError("InvalidParameterValue", { message }));
}

/** Adds a sent (or dead-lettered) message at the end of its queue and of its group. */
function enqueue(q: FifoQueue, m: FifoMessage): void {
  q.messages.push(m);
  const group = q.groups.get(m.groupId);
  if (group) group.push(m);
  else q.groups.set(m.groupId, [m]);
}

/** Deletes `m`: out of its group now, out of `messages` at the next compaction. */
function remove(q: FifoQueue, m: FifoMessage): void {
  m.deleted = true;
  leaveGroup(q, m);
  if (++q.dead > 1024 && q.dead * 2 > q.messages.length) {
    q.messages = q.messages.filter((x) => !x.deleted);
    q.dead = 0;
  }
}

function leaveGroup(q: FifoQueue, m: FifoMessage): void {
  const group = q.groups.get(m.groupId) ?? [];
  const index = group.indexOf(m);
  if (index >= 0) group.splice(index, 1);
  if (group.length === 0) q.groups.delete(m.groupId);
}

/** The group of the oldest message whose group has nothing in flight at `t`, in order. */
function firstFreeGroup(q: FifoQueue, t: number): FifoMessage[] | undefined {
  const seen = new Set<string>();
  for (const m of q.messages) {
    if (m.deleted || seen.has(m.groupId)) continue;
    seen.add(m.groupId);
    const group = q.groups.get(m.groupId);
    if (group && !group.some((x) => x.visibleAt > t)) return group;
  }
  return undefined;
}

function nameOf(queueUrl: unknown): string {
  return String(queueUrl ?? "").split("/").filter(Boolean).pop() ?? "";
}

/** A received message as SQS answers it: system attributes and message attributes as asked. */
function render(m: FifoMessage, b: Body): Body {
  const wanted = [b.AttributeNames, b.MessageSystemAttributeNames]
    .flatMap((names) => Array.isArray(names) ? names.map(String) : []);
  const all: Record<string, string | undefined> = {
    ApproximateReceiveCount: String(m.receiveCount),
    SentTimestamp: String(m.sentAt),
    ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt),
    SenderId: "000000000000",
    MessageGroupId: m.groupId,
    MessageDeduplicationId: m.dedupId,
    SequenceNumber: m.sequence,
    AWSTraceHeader: m.traceHeader,
    DeadLetterQueueSourceArn: m.sourceArn,
  };
  const attributes = Object.fromEntries(
    Object.entries(all).filter(([k, v]) =>
      v !== undefined && (wanted.includes("All") || wanted.includes(k))
    ),
  );
  const names = Array.isArray(b.MessageAttributeNames) ? b.MessageAttributeNames.map(String) : [];
  const picked = Object.entries(m.attributes).filter(([k]) =>
    names.some((n) =>
      n === "All" || n === ".*" || n === k || (n.endsWith(".*") && k.startsWith(n.slice(0, -1)))
    )
  );
  return {
    MessageId: m.messageId,
    ReceiptHandle: m.handle,
    MD5OfBody: md5Hex(m.body),
    Body: m.body,
    ...(Object.keys(attributes).length ? { Attributes: attributes } : {}),
    ...(picked.length ? { MessageAttributes: Object.fromEntries(picked) } : {}),
  };
}

/** SQS's checks of a batch's entries. */
function checkBatch(entries: unknown): Body[] {
  if (!Array.isArray(entries) || entries.length === 0) {
    throw new Refused(sqsError("EmptyBatchRequest", {
      message: "There should be at least one entry in the request.",
    }));
  }
  if (entries.length > 10) {
    throw new Refused(sqsError("TooManyEntriesInBatchRequest", {
      message: `Maximum number of entries per request are 10. You have sent ${entries.length}.`,
    }));
  }
  const seen = new Set<string>();
  for (const entry of entries as Body[]) {
    const id = entry?.Id;
    if (typeof id !== "string" || !/^[A-Za-z0-9_-]{1,80}$/.test(id)) {
      throw new Refused(sqsError("InvalidBatchEntryId", {
        message:
          "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
      }));
    }
    if (seen.has(id)) {
      throw new Refused(sqsError("BatchEntryIdsNotDistinct", { message: `Id ${id} repeated.` }));
    }
    seen.add(id);
  }
  return entries as Body[];
}

/** Runs `each` per entry: SQS's Successful and Failed lists. */
function eachEntry(entries: Body[], each: (entry: Body) => Body): Body {
  const Successful: Body[] = [];
  const Failed: Body[] = [];
  for (const entry of entries) {
    try {
      Successful.push({ Id: entry.Id, ...each(entry) });
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      Failed.push(failedEntry(String(entry.Id), error.answer));
    }
  }
  return { Successful, Failed };
}
