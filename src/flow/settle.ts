/**
 * The SQS side of a message's end: batched deletes, batched visibility changes
 * and dead-letter sends. Transient SQS failures are retried here, per entry, so
 * the pipeline only learns "done" or "the receipt handle is stale".
 */
import { Batcher } from "../lib/batcher.ts";
import type { Clock } from "../lib/clock.ts";
import { SluiceError, SqsError } from "../lib/errors.ts";
import { retryFailed, tryFirst } from "../lib/retry.ts";
import { MAX_MESSAGE_BYTES, messageBytes } from "../lib/sqs_size.ts";
import { asciiText, sqsAttributeText } from "../lib/sqs_text.ts";
import { withRedriveHistory } from "../domain/redrive_history.ts";
import {
  type BatchResult,
  type FifoSend,
  isStaleHandle,
  type SqsClient,
  type SqsMessage,
} from "../adapters/sqs_client.ts";

/** An SQS message attribute may hold 256 KiB, but the reason is for humans. */
const MAX_REASON = 256;

export interface SettlerOptions {
  sqs: Pick<
    SqsClient,
    "deleteMessageBatch" | "changeMessageVisibilityBatch" | "sendMessage" | "sendMessageCopy"
  >;
  queueUrl: string;
  /** The queue (and so its DLQ) is FIFO: copies carry a group and a deduplication id. */
  fifo?: boolean;
  /** Where poison goes now (it may be found after startup); undefined = no DLQ. */
  dlqUrl: () => string | undefined;
  /** How long a partly filled delete/visibility batch waits, ms: longer fills batches at low rates. Default 25. */
  batchWaitMs?: number;
  /** How long an entry keeps being retried through an SQS outage, ms. Default 300000. */
  retryBudgetMs?: number;
  /** Called per entry SQS reports stale (`delete` or `visibility`). */
  onStale?: (kind: "delete" | "visibility", code: string) => void;
  /** Called when the DLQ refused a send's attributes and the minimal reason is tried instead. */
  onDlqFallback?: (error: SqsError) => void;
  /**
   * A send that succeeded after a try whose answer was lost (no answer, a timeout, a 5xx): SQS
   * may hold two copies. Standard queues have no deduplication; the message_id dedupe absorbs a
   * second copy in the main queue, a second DLQ copy stays.
   */
  onAmbiguousSend?: (kind: "dlq_send" | "requeue") => void;
  /** Batch timers, retry budgets, backoff. */
  clock: Clock;
}

export type SettleResult = "done" | "stale";

/** What a DLQ copy or a re-queued copy is made of (the id and group only on FIFO queues). */
export type SentAgain =
  & Pick<SqsMessage, "receiptHandle" | "body" | "messageAttributes">
  & Partial<Pick<SqsMessage, "messageId" | "attributes">>;

interface Entry {
  receiptHandle: string;
  visibilityTimeout?: number;
}

class StaleEntry extends SluiceError {
  override name = "StaleEntry";
  constructor(readonly code: string) {
    super(`receipt handle is stale (${code})`, "TRANSIENT");
  }
}

function entryErrors(result: BatchResult, count: number, action: string): Array<void | Error> {
  const out: Array<void | Error> = new Array(count).fill(undefined);
  for (const failure of result.failed) {
    const index = Number(failure.id);
    if (!Number.isInteger(index) || index < 0 || index >= count) continue;
    out[index] = isStaleHandle(failure.code, failure.message)
      ? new StaleEntry(failure.code)
      : new SqsError(action, failure.code, failure.senderFault ? 400 : 500, failure.message, {
        retriable: !failure.senderFault,
      });
  }
  return out;
}

export class Settler {
  readonly #options: SettlerOptions;
  readonly #deletes: Batcher<Entry, void>;
  readonly #visibility: Batcher<Entry, void>;

  constructor(options: SettlerOptions) {
    this.#options = options;
    const { sqs, queueUrl } = options;
    const maxWaitMs = options.batchWaitMs ?? 25;
    this.#deletes = new Batcher<Entry, void>({
      clock: options.clock,
      maxSize: 10,
      maxWaitMs,
      run: async (items) =>
        entryErrors(
          await sqs.deleteMessageBatch(
            queueUrl,
            items.map((item, i) => ({ id: String(i), receiptHandle: item.receiptHandle })),
          ),
          items.length,
          "DeleteMessageBatch",
        ),
    });
    this.#visibility = new Batcher<Entry, void>({
      clock: options.clock,
      maxSize: 10,
      maxWaitMs,
      run: async (items) =>
        entryErrors(
          await sqs.changeMessageVisibilityBatch(
            queueUrl,
            items.map((item, i) => ({
              id: String(i),
              receiptHandle: item.receiptHandle,
              visibilityTimeout: item.visibilityTimeout ?? 0,
            })),
          ),
          items.length,
          "ChangeMessageVisibilityBatch",
        ),
    });
  }

  get hasDlq(): boolean {
    return this.#options.dlqUrl() !== undefined;
  }

  /** Deletes a message; "stale" when SQS says the handle no longer applies. */
  delete(receiptHandle: string): Promise<SettleResult> {
    return this.#persist("delete", () => this.#deletes.add({ receiptHandle }));
  }

  /**
   * Sets a message's visibility (0 releases it now). `budgetMs` bounds the retries:
   * a heartbeat extension that lands minutes late could undo a later release.
   */
  changeVisibility(
    receiptHandle: string,
    visibilityTimeout: number,
    budgetMs?: number,
  ): Promise<SettleResult> {
    return this.#persist(
      "visibility",
      () => this.#visibility.add({ receiptHandle, visibilityTimeout }),
      budgetMs,
    );
  }

  /**
   * Sends the body byte for byte to the DLQ with `sluice_error` and
   * `sluice_reason` (made acceptable to SQS: well-formed, allowed characters,
   * cut by code point, never empty) and the message's redrive history, then
   * deletes the original. When SQS refuses the attributes anyway, it tries once
   * more with a minimal ASCII reason.
   * Returns false (nothing deleted) when there is no DLQ or SQS refuses the copy
   * for good, e.g. too large.
   */
  async deadLetter(
    message: SentAgain,
    category: string,
    reason: string,
  ): Promise<false | SettleResult> {
    const dlqUrl = this.#options.dlqUrl();
    if (dlqUrl === undefined) return false;
    const { receiptHandle, body } = message;
    const attributes = withRedriveHistory(
      body,
      dlqAttributes(category, reason),
      message.messageAttributes,
    );
    if (messageBytes(body, attributes) > MAX_MESSAGE_BYTES) return false;
    const fifo = this.#fifoSend("dlq", message);
    const send = (attrs: Record<string, string>) =>
      this.#send(
        "dlq_send",
        () => this.#options.sqs.sendMessage(dlqUrl, body, attrs, undefined, fifo),
      );
    try {
      await send(attributes);
    } catch (error) {
      if (!(error instanceof SqsError) || error.retriable) throw error;
      if (!REFUSED_CONTENT.has(error.code)) return false;
      this.#options.onDlqFallback?.(error);
      try {
        await send(minimalDlqAttributes(category, reason));
      } catch (again) {
        if (again instanceof SqsError && !again.retriable) return false;
        throw again;
      }
    }
    return await this.delete(receiptHandle);
  }

  /**
   * Re-queues a message at shutdown: SendMessage of the same body and message
   * attributes to the main queue, then deletes the original, so the redrive policy
   * never counts this receive against it. A copy whose delete fails leaves two
   * copies: the `message_id` dedupe absorbs the second. `budgetMs` bounds the
   * retries (shutdown has little time). Throws when the copy could not be sent:
   * the original is then untouched.
   */
  async requeue(message: SentAgain, budgetMs?: number): Promise<SettleResult> {
    const { sqs, queueUrl } = this.#options;
    const fifo = this.#fifoSend("rq", message);
    await this.#send(
      "requeue",
      () => sqs.sendMessageCopy(queueUrl, message.body, message.messageAttributes, undefined, fifo),
      budgetMs,
    );
    const receiptHandle = message.receiptHandle;
    return await this.#persist("delete", () => this.#deletes.add({ receiptHandle }), budgetMs);
  }

  /**
   * On FIFO queues a copy keeps its message group, with a deduplication id derived from the
   * SQS MessageId, so a send retried after a lost answer is not stored twice.
   */
  #fifoSend(prefix: string, message: SentAgain): FifoSend | undefined {
    if (!this.#options.fifo) return undefined;
    const groupId = message.attributes?.MessageGroupId;
    if (!groupId || !message.messageId) {
      throw new SqsError(
        "SendMessage",
        "MissingMessageGroupId",
        400,
        "a FIFO message without its group",
        {
          retriable: false,
        },
      );
    }
    return { groupId, deduplicationId: `${prefix}-${message.messageId}` };
  }

  /** Sends every queued delete and visibility change now and waits for them. */
  async flush(): Promise<void> {
    await Promise.all([this.#deletes.flush(), this.#visibility.flush()]);
  }

  async #persist(
    kind: "delete" | "visibility",
    fn: () => Promise<void>,
    budgetMs?: number,
  ): Promise<SettleResult> {
    try {
      await this.#retry(fn, budgetMs);
      return "done";
    } catch (error) {
      if (error instanceof StaleEntry) {
        this.#options.onStale?.(kind, error.code);
        return "stale";
      }
      // A whole request refused for its one stale handle (a single-entry call) is stale too.
      if (error instanceof SqsError && isStaleHandle(error.code, error.message)) {
        this.#options.onStale?.(kind, error.code);
        return "stale";
      }
      throw error;
    }
  }

  /** A send retried like any entry; one whose earlier try may have landed is reported. */
  async #send<T>(kind: "dlq_send" | "requeue", fn: () => Promise<T>, budgetMs?: number) {
    let ambiguous = false;
    const result = await this.#retry(fn, budgetMs, (error) => {
      ambiguous ||= mayHaveLanded(error);
    });
    if (ambiguous) this.#options.onAmbiguousSend?.(kind);
    return result;
  }

  /** `fn`, retried; the first try builds no options (lib/retry.ts). */
  #retry<T>(
    fn: () => Promise<T>,
    budgetMs?: number,
    onRetry?: (error: unknown) => void,
  ): Promise<T> {
    const o = this.#options;
    return tryFirst(fn, o.clock, (error, start) =>
      retryFailed(
        fn,
        {
          clock: o.clock,
          ...(onRetry ? { onRetry } : {}),
          maxAttempts: Number.POSITIVE_INFINITY,
          baseDelayMs: 200,
          maxDelayMs: 10_000,
          budgetMs: budgetMs ?? o.retryBudgetMs ?? 300_000,
          isRetriable: retriableEntry,
        },
        start,
        error,
      ));
  }
}

/** Whether a failed entry or request is worth another try: anything but a stale handle or a refusal. */
function retriableEntry(error: unknown): boolean {
  return error instanceof SqsError ? error.retriable : !(error instanceof StaleEntry);
}

/** Whether a failed send may have reached SQS all the same: no answer, or a server error. */
function mayHaveLanded(error: unknown): boolean {
  return !(error instanceof SqsError) || error.status === 0 || error.status >= 500;
}

/** SQS codes for a send refused for its content (characters, attributes), not for a fault. */
const REFUSED_CONTENT = new Set(["InvalidParameterValue", "InvalidMessageContents"]);

/** The DLQ attributes (docs/outcomes.md), each a value SQS will store. */
export function dlqAttributes(category: string, reason: string): Record<string, string> {
  return {
    sluice_error: sqsAttributeText(category, MAX_REASON, "UNKNOWN"),
    sluice_reason: sqsAttributeText(reason, MAX_REASON, "no reason given"),
  };
}

/** The fallback after a refusal: printable ASCII only, which any SQS takes. */
export function minimalDlqAttributes(category: string, reason: string): Record<string, string> {
  return {
    sluice_error: asciiText(category, 64, "UNKNOWN"),
    sluice_reason: asciiText(reason, MAX_REASON, "no reason given"),
  };
}
