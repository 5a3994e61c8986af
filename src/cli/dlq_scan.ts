/**
 * Walks the dead-letter queue once for peek, redrive and purge. Each message is received once
 * and held (hidden) while the walk goes on, so the walk sees every message a single time; what
 * the command does not remove is made visible again as soon as the walk ends, not after the
 * visibility timeout.
 */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import { retry } from "../lib/retry.ts";
import type { DlqFilter } from "./cli_args.ts";
import { type CliDeps, cliRetry } from "./cli_deps.ts";
import type { DlqSession } from "./dlq_session.ts";
import { selects } from "./dlq_select.ts";

/** How long a received message stays hidden while the walk goes on. */
const HOLD_SECONDS = 120;
/** Receives in a row that bring nothing new before the walk counts the queue as seen. */
const IDLE_RECEIVES = 3;

export interface ScanOptions {
  session: DlqSession;
  filter: DlqFilter;
  /** Select at most this many; undefined = all. */
  limit: number | undefined;
  /** Look at no more than this many messages (one pass over a DLQ that keeps filling); undefined = all. */
  maxScanned?: number | undefined;
  /** Messages to leave alone, not counted as new (a redrive's own copies, come back). */
  skip?: (message: SqsMessage) => boolean;
  /** Selected messages are handed over in batches of this size (1-10). */
  batchSize: number;
  deps: CliDeps;
  /** Handles a batch of selected messages: the ones to make visible again, and whether to stop. */
  onBatch(batch: SqsMessage[]): Promise<{ release: SqsMessage[]; stop: boolean }>;
}

export interface ScanResult {
  scanned: number;
  selected: number;
  /** Messages `skip` left alone. */
  skipped: number;
  /** Messages made visible again at the end; failed releases reappear after HOLD_SECONDS. */
  released: number;
}

/** Walks the DLQ; see the module comment. SQS failures after retries propagate. */
export async function scanDlq(o: ScanOptions): Promise<ScanResult> {
  const walk = new Walk(o);
  try {
    let idle = 0;
    while (!walk.done()) {
      const batch = await retry(() =>
        o.session.sqs.receiveMessage({
          queueUrl: o.session.dlqUrl,
          maxNumberOfMessages: 10,
          // A long poll asks every SQS server: an empty answer then means an empty queue.
          waitTimeSeconds: 1,
          visibilityTimeout: HOLD_SECONDS,
          // Set by SQS on messages a redrive policy moved: the queue each came from.
          // A FIFO message's group goes back with it.
          moreSystemAttributes: ["DeadLetterQueueSourceArn", "MessageGroupId"],
          signal: o.deps.signal,
        }), cliRetry(o.deps));
      if (batch.length === 0) break;
      idle = await walk.take(batch) === 0 ? idle + 1 : 0;
      if (idle >= IDLE_RECEIVES) break;
    }
    await walk.finish();
  } finally {
    await releaseAll(o, walk.held);
  }
  return walk.result();
}

/** What one walk has seen, selected and holds. */
class Walk {
  /** Every message received and not handed over for good: what the walk releases at the end. */
  readonly held = new Map<string, string>();
  readonly #o: ScanOptions;
  readonly #seen = new Set<string>();
  #pending: SqsMessage[] = [];
  #selected = 0;
  #skipped = 0;
  /** Distinct messages looked at, skipped ones aside. */
  #examined = 0;
  #stopped = false;

  constructor(o: ScanOptions) {
    this.#o = o;
  }

  done(): boolean {
    const o = this.#o;
    return this.#stopped || (o.limit !== undefined && this.#selected >= o.limit) ||
      (o.maxScanned !== undefined && this.#examined >= o.maxScanned);
  }

  /** One receive's messages; how many were new to this walk. */
  async take(batch: SqsMessage[]): Promise<number> {
    let fresh = 0;
    // Held from now on, so an error part-way through this batch still releases all of it.
    for (const m of batch) this.held.set(m.messageId, m.receiptHandle);
    for (const m of batch) {
      // A message seen before came back after its hold ran out: only its newest handle matters.
      if (this.#seen.has(m.messageId)) continue;
      this.#seen.add(m.messageId);
      if (this.#o.skip?.(m)) {
        this.#skipped++;
        continue;
      }
      fresh++;
      if (this.done()) continue;
      this.#examined++;
      if (!selects(this.#o.filter, m, this.#o.deps.clock.now())) continue;
      this.#selected++;
      this.#pending.push(m);
      if (this.#pending.length >= this.#o.batchSize) this.#stopped = await this.#flush();
    }
    return fresh;
  }

  /** Hands over what is selected and not handed over yet. */
  async finish(): Promise<void> {
    if (!this.#stopped && this.#pending.length > 0) await this.#flush();
  }

  result(): ScanResult {
    return {
      scanned: this.#seen.size,
      selected: this.#selected,
      skipped: this.#skipped,
      released: this.held.size,
    };
  }

  async #flush(): Promise<boolean> {
    const batch = this.#pending;
    this.#pending = [];
    for (const m of batch) this.held.delete(m.messageId);
    let result;
    try {
      result = await this.#o.onBatch(batch);
    } catch (error) {
      // Interrupted before its send (the pacing sleep): the batch is still ours to release.
      for (const m of batch) this.held.set(m.messageId, m.receiptHandle);
      throw error;
    }
    for (const m of result.release) this.held.set(m.messageId, m.receiptHandle);
    return result.stop;
  }
}

async function releaseAll(o: ScanOptions, held: Map<string, string>): Promise<void> {
  const handles = [...held.values()];
  // Not the command's signal: after Ctrl-C the held messages must still come back at once.
  const { signal: _ignored, ...options } = cliRetry(o.deps);
  for (let i = 0; i < handles.length; i += 10) {
    const entries = handles.slice(i, i + 10).map((receiptHandle, j) => ({
      id: String(j),
      receiptHandle,
      visibilityTimeout: 0,
    }));
    try {
      await retry(
        () => o.session.sqs.changeMessageVisibilityBatch(o.session.dlqUrl, entries),
        options,
      );
    } catch {
      o.deps.err(
        `sluice: warning: ${entries.length} message(s) stay hidden in the DLQ for up to ` +
          `${HOLD_SECONDS} s`,
      );
    }
  }
}
