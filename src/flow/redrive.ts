/**
 * The queue's RedrivePolicy (docs/outcomes.md): its DLQ and `maxReceiveCount`.
 * The worker keeps retrying in the background after a failed read (an IAM role
 * still propagating, an expired token), and until the policy is known every
 * receive counts as possibly the last (see `isLastReceive` in outcome.ts).
 */
import { SluiceError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { onAbort } from "../lib/on_abort.ts";
import type { Clock } from "../lib/clock.ts";
import { backoffDelay, retry } from "../lib/retry.ts";
import type { SqsClient } from "../adapters/sqs_client.ts";

/** What discovery needs from the Config. */
export interface RedriveConfig {
  queueUrl: string;
  /** DLQ_QUEUE_URL: wins over the policy's target. */
  dlqQueueUrl: string | undefined;
}

export interface Redrive {
  dlqUrl: string | undefined;
  /** undefined when the queue has no RedrivePolicy (SQS never moves its messages). */
  maxReceiveCount: number | undefined;
}

/** Thrown when the policy names a DLQ whose URL could not be found. */
export class DlqLookupError extends SluiceError {
  override name = "DlqLookupError";
  constructor(readonly redrive: Redrive, readonly dlqName: string, cause: unknown) {
    super(`Cannot find the URL of the DLQ ${dlqName}: ${describe(cause)}`, "TRANSIENT", { cause });
  }
}

/** A short text for an error, for logs and /readyz. */
export function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}

type Sqs = Pick<SqsClient, "getQueueAttributes" | "getQueueUrl">;

/**
 * Reads the RedrivePolicy once (retrying only what `isRetriable` allows, up to
 * `attempts`). Throws when the attributes cannot be read; a DlqLookupError when
 * the policy was read but its DLQ's URL was not found.
 */
export async function readRedrive(
  sqs: Sqs,
  config: RedriveConfig,
  services: { logger: Logger; clock: Clock },
  signal: AbortSignal,
  attempts: number,
): Promise<Redrive> {
  const { logger, clock } = services;
  const attributes = await retry(
    () => sqs.getQueueAttributes(config.queueUrl, ["RedrivePolicy"], signal),
    { clock, maxAttempts: attempts, baseDelayMs: 500, maxDelayMs: 10_000, signal },
  );
  const raw = attributes.RedrivePolicy;
  if (!raw) {
    if (!config.dlqQueueUrl) {
      logger.warn(
        "the queue has no RedrivePolicy and DLQ_QUEUE_URL is not set; poison messages will be released, not dead-lettered",
      );
    }
    return { dlqUrl: config.dlqQueueUrl, maxReceiveCount: undefined };
  }
  let policy: { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
  try {
    policy = JSON.parse(raw);
  } catch {
    logger.warn("the queue's RedrivePolicy is not JSON", { redrive_policy: raw });
    return { dlqUrl: config.dlqQueueUrl, maxReceiveCount: undefined };
  }
  const maxReceiveCount = Number(policy.maxReceiveCount) || undefined;
  if (config.dlqQueueUrl) return { dlqUrl: config.dlqQueueUrl, maxReceiveCount };
  // arn:aws:sqs:REGION:ACCOUNT:NAME
  const parts = String(policy.deadLetterTargetArn ?? "").split(":");
  const [account, name] = [parts[4], parts[5]];
  if (!name) {
    logger.warn("the RedrivePolicy names no DLQ", { redrive_policy: raw });
    return { dlqUrl: undefined, maxReceiveCount };
  }
  try {
    const dlqUrl = await retry(() => sqs.getQueueUrl(name, account || undefined, signal), {
      clock,
      maxAttempts: Math.min(attempts, 10),
      signal,
    });
    return { dlqUrl, maxReceiveCount };
  } catch (error) {
    if (signal.aborted) throw error;
    throw new DlqLookupError({ dlqUrl: undefined, maxReceiveCount }, name, error);
  }
}

/**
 * The worker's live view of the policy. `known` is false until the policy has
 * been read: "not read yet" is not "the queue has none", and only the latter
 * lets a message be released on any receive.
 */
export interface RedriveState {
  readonly known: boolean;
  readonly maxReceiveCount: number | undefined;
  readonly dlqUrl: string | undefined;
  /** Why the policy (or its DLQ's URL) is not known yet; undefined once it is. */
  readonly pending: string | undefined;
}

export interface RedriveWatcherOptions {
  sqs: Sqs;
  config: RedriveConfig;
  logger: Logger;
  /** Backoff between failed reads: full jitter from `baseDelayMs`, capped. Defaults 1000, 60000. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Attempts per read for retryable errors before it counts as failed. Default 3. */
  attemptsPerRead?: number;
  /**
   * How often a known policy is read again, ms: a changed `maxReceiveCount` takes effect
   * without a restart. Default 300000; `refresh()` asks for a read sooner.
   */
  refreshMs?: number;
  /** Backoff, its jitter and the period between reads. */
  clock: Clock;
  /** Called whenever the state changes. */
  onChange?: (state: RedriveState) => void;
}

/**
 * Reads the RedrivePolicy, after a failure keeps reading it in the background (capped,
 * jittered backoff) until it succeeds, and then reads it again every `refreshMs`, until
 * `signal` aborts.
 */
export class RedriveWatcher {
  readonly #options: RedriveWatcherOptions;
  #state: RedriveState;
  #failures = 0;
  #wake: (() => void) | undefined;

  constructor(options: RedriveWatcherOptions) {
    this.#options = options;
    this.#state = {
      known: false,
      maxReceiveCount: undefined,
      dlqUrl: options.config.dlqQueueUrl,
      pending: "not read yet",
    };
  }

  /** The current state (a fresh object per change; read it each time). */
  get state(): RedriveState {
    return this.#state;
  }

  /**
   * Makes the first read; resolves after it (whatever its result) with a promise for the
   * reads that follow it in the background (retries until known, then one every
   * `refreshMs`), which end when `signal` aborts.
   */
  async start(signal: AbortSignal): Promise<{ background: Promise<void> }> {
    const finished = await this.#attempt(signal);
    return { background: this.#readAgain(signal, finished) };
  }

  /**
   * Reads the policy again soon (at most one read per `refreshMs / 30`): SQS said the queue
   * does not exist or refused a request, so the policy (or the worker's rights) may have changed.
   */
  refresh(): void {
    this.#wake?.();
  }

  async #readAgain(signal: AbortSignal, known: boolean): Promise<void> {
    const sleep = (ms: number, on: AbortSignal) => this.#options.clock.sleep(ms, on);
    const refreshMs = this.#options.refreshMs ?? 300_000;
    while (!signal.aborted) {
      const wait = known ? refreshMs : this.#retryDelay();
      const woken = new AbortController();
      this.#wake = () => woken.abort();
      const forget = onAbort(signal, () => woken.abort());
      try {
        // Woken early by refresh(): still not more often than a thirtieth of the period.
        await sleep(wait, woken.signal).catch(() => {});
        if (!signal.aborted && known) await sleep(refreshMs / 30, signal).catch(() => {});
      } finally {
        forget();
        this.#wake = undefined;
      }
      if (signal.aborted) return;
      known = await this.#attempt(signal);
    }
  }

  #retryDelay(): number {
    const base = this.#options.baseDelayMs ?? 1000;
    const delay = backoffDelay(
      this.#failures,
      base,
      this.#options.maxDelayMs ?? 60_000,
      () => this.#options.clock.random(),
    );
    // At least a tenth of the base: full jitter may draw ~0 and spin.
    return Math.max(delay, base / 10);
  }

  /** One read; true when nothing is left to find out. */
  async #attempt(signal: AbortSignal): Promise<boolean> {
    const { sqs, config, logger } = this.#options;
    const attempts = this.#options.attemptsPerRead ?? 3;
    try {
      const redrive = await readRedrive(sqs, config, this.#options, signal, attempts);
      const before = this.#state;
      const changed = before.known &&
        (before.maxReceiveCount !== redrive.maxReceiveCount || before.dlqUrl !== redrive.dlqUrl);
      if (this.#failures > 0 || changed) {
        logger.info(
          changed ? "the queue's RedrivePolicy changed" : "read the queue's RedrivePolicy",
          {
            after_failures: this.#failures,
            dlq: redrive.dlqUrl ?? null,
            max_receive_count: redrive.maxReceiveCount ?? null,
          },
        );
      }
      this.#failures = 0;
      if (!changed && before.known && before.pending === undefined) return true;
      this.#set({ known: true, ...redrive, pending: undefined });
      return true;
    } catch (error) {
      if (signal.aborted) return true;
      this.#failures++;
      const firstOrTenth = this.#failures === 1 || this.#failures % 10 === 0;
      if (error instanceof DlqLookupError) {
        // The policy is known; only its DLQ's URL is missing: keep looking for it.
        this.#set({
          known: true,
          ...error.redrive,
          pending: `DLQ URL not found yet: ${describe(error.cause)}`,
        });
        if (firstOrTenth) {
          logger.warn("cannot find the DLQ's URL yet; retrying in the background", {
            error: error.cause,
            dlq: error.dlqName,
            failures: this.#failures,
          });
        }
        return false;
      }
      if (this.#state.known && this.#state.pending === undefined) {
        // A read again failed: the policy read before still holds; /readyz does not flap.
        logger.warn("cannot read the queue's RedrivePolicy again; keeping the one read before", {
          error,
        });
        return false;
      }
      this.#set({ ...this.#state, pending: describe(error) });
      if (firstOrTenth) {
        logger.warn(
          "cannot read the queue's RedrivePolicy yet; retrying in the background, and until then every receive counts as possibly the last (held, never released)",
          { error, failures: this.#failures },
        );
      }
      return false;
    }
  }

  #set(state: RedriveState): void {
    this.#state = state;
    this.#options.onChange?.(state);
  }
}
