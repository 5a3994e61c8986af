/**
 * One message's way through: receive (several long polls keep up to
 * MAX_IN_FLIGHT messages in work), parse, dedupe, enrich, submit, settle. What
 * happens at the end is decided by `route()` (outcome.ts); this file only
 * carries it out.
 */
import { categoryOf, CircuitOpenError, HttpError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { type InputMessage, parseMessage } from "../domain/message_schema.ts";
import { poisonIds } from "../domain/poison_ids.ts";
import {
  holdMustEnd,
  type Outcome,
  releaseVisibilitySeconds,
  route,
  type RouteContext,
  shutdownAction,
  type UnknownUserPolicy,
  type Verdict,
} from "../domain/outcome.ts";
import {
  buildOutputDocument,
  type Enrichment,
  type OutputDocument,
} from "../domain/output_document.ts";
import { backoffDelay, retry, sleep as defaultSleep } from "../lib/retry.ts";
import { Semaphore } from "../lib/semaphore.ts";
import type { Settler } from "./settle.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import type { SqsClient, SqsMessage } from "../adapters/sqs_client.ts";
import { BYTES_PER_ENTRY, IdWindow } from "../lib/id_window.ts";
import type { Submission } from "../adapters/validator_client.ts";
import type { VisibilityHeartbeat } from "./visibility_heartbeat.ts";

export interface PipelineOptions {
  queueUrl: string;
  /** SQS_MAX_BATCH */
  maxBatch: number;
  /** SQS_RECEIVE_WAIT_SECONDS */
  receiveWaitSeconds: number;
  /** SQS_VISIBILITY_TIMEOUT_SECONDS */
  visibilityTimeoutSeconds: number;
  /** MAX_IN_FLIGHT */
  maxInFlight: number;
  deleteOn4xx: boolean;
  deleteOn5xx: boolean;
  unknownUserPolicy: UnknownUserPolicy;
  /** DEDUP_TTL_SECONDS */
  dedupTtlSeconds: number;
  /**
   * From the queue's RedrivePolicy, known at construction; undefined when it has
   * none. Ignored when `redrive` is given.
   */
  maxReceiveCount?: number | undefined;
  /**
   * The live RedrivePolicy (RedriveWatcher.state), read at each decision: while
   * `known` is false every receive counts as possibly the last.
   */
  redrive?: () => { known: boolean; maxReceiveCount: number | undefined };
  /** Memory the accepted-id window may take, bytes. Default 28 MiB (IdWindow). */
  dedupMaxBytes?: number;
  /** The full speed the dedupe window is checked against at startup, msg/s. Default 3000. */
  dedupReferenceRate?: number;
  /** Concurrent long polls. Default: as many as MAX_IN_FLIGHT fills with full batches, at most 10. */
  pollers?: number;
  sqs: Pick<SqsClient, "receiveMessage">;
  settler: Pick<Settler, "delete" | "changeVisibility" | "deadLetter" | "requeue" | "hasDlq">;
  heartbeat: Pick<VisibilityHeartbeat, "track" | "untrack">;
  /** The enrichment for a user id (ProfileSource.lookup); throws transient errors. */
  lookup: (userId: string) => Promise<Enrichment>;
  /**
   * Submits to the validator behind its breaker and limit. `signal` aborts when the
   * shutdown grace ends: a submission still queued for a slot must then not start.
   */
  submit: (document: OutputDocument, signal: AbortSignal) => Promise<Submission>;
  /** Why intake should pause now (a breaker is open), and for how long; undefined = go. */
  pausedFor?: () => { reason: string; ms: number } | undefined;
  metrics: SluiceMetrics;
  logger: Logger;
  /** Told each final outcome and its receive→final ms (the periodic summary). */
  onOutcome?: (outcome: Outcome, durationMs: number) => void;
  /** Wall clock, ms: message age (SentTimestamp). Default Date.now. */
  now?: () => number;
  /**
   * Monotonic clock, ms: time since receive, retry budgets, holds; a wall-clock step
   * (NTP) must not end a hold or a budget early. Default performance.now.
   */
  monotonic?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** How long a re-queue at shutdown may keep retrying, ms. */
const REQUEUE_BUDGET_MS = 10_000;

/** How long a poller waits after a partial receive, ms: a little latency for fuller batches. */
const PARTIAL_PAUSE_MS = 50;

interface Context extends RouteContext {
  sqs: SqsMessage;
  receivedAt: number;
  messageId?: string;
  userId?: string;
}

export class Pipeline {
  readonly #o: PipelineOptions;
  readonly #now: () => number;
  readonly #clock: () => number;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #slots: Semaphore;
  readonly #accepted: IdWindow;
  #dedupeWarnedAt = Number.NEGATIVE_INFINITY;
  /** message_id → resolves, when the copy being worked on is done, to whether it was accepted. */
  readonly #working = new Map<string, Promise<boolean>>();
  readonly #handlers = new Set<Promise<void>>();
  #pollersRunning = 0;
  /** How many of the long polls run now; grows while receives come back full. */
  #activePollers = 1;

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#clock = options.monotonic ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#slots = new Semaphore({ limit: options.maxInFlight });
    // 64-bit hashes in typed arrays (~17 bytes an id), grown with the observed rate up to a
    // memory budget: the window is DEDUP_TTL_SECONDS unless the budget cannot hold it.
    this.#accepted = new IdWindow({
      ttlMs: options.dedupTtlSeconds * 1000,
      ...(options.dedupMaxBytes !== undefined ? { maxBytes: options.dedupMaxBytes } : {}),
      now: this.#now,
    });
    this.#reportDedupeCapacity();
  }

  /** The dedupe window the memory budget holds at full speed, said once at startup. */
  #reportDedupeCapacity(): void {
    const o = this.#o;
    o.metrics.dedupeWindow.set(undefined, o.dedupTtlSeconds);
    const plan = dedupeCapacity(
      o.dedupTtlSeconds,
      this.#accepted.maxEntries,
      o.dedupReferenceRate ?? 3000,
    );
    if (plan.windowSeconds >= o.dedupTtlSeconds) return;
    o.logger.warn(
      `the dedupe window cannot hold DEDUP_TTL_SECONDS=${o.dedupTtlSeconds} above ${plan.maxRate} msg/s; at ${plan.rate} msg/s it holds ${plan.windowSeconds} s`,
      {
        dedup_ttl_seconds: o.dedupTtlSeconds,
        max_entries: this.#accepted.maxEntries,
        bytes_per_entry: Math.round(BYTES_PER_ENTRY * 10) / 10,
        max_rate: plan.maxRate,
        window_seconds_at_rate: plan.windowSeconds,
      },
    );
  }

  /** Remembers an accepted id; says so (gauge, a warning every 10 min) when the window shrinks. */
  #remember(id: string): void {
    const o = this.#o;
    this.#accepted.add(id);
    const window = Math.floor(this.#accepted.windowMs() / 1000);
    o.metrics.dedupeWindow.set(undefined, window);
    const now = this.#now();
    if (window < o.dedupTtlSeconds && now - this.#dedupeWarnedAt >= 600_000) {
      this.#dedupeWarnedAt = now;
      o.logger.warn("the dedupe window is shorter than DEDUP_TTL_SECONDS at this rate", {
        dedup_ttl_seconds: o.dedupTtlSeconds,
        window_seconds: window,
        held: this.#accepted.size,
      });
    }
  }

  /** Refreshes the redrive fields of a message's context from the live policy. */
  /** The RedrivePolicy as known now: live from `redrive`, else the one given at construction. */
  #liveRedrive(): { known: boolean; maxReceiveCount: number | undefined } {
    return this.#o.redrive?.() ?? { known: true, maxReceiveCount: this.#o.maxReceiveCount };
  }

  #redrive(ctx: RouteContext): void {
    const live = this.#liveRedrive();
    ctx.redriveKnown = live.known;
    ctx.maxReceiveCount = live.maxReceiveCount;
    ctx.hasDlq = this.#o.settler.hasDlq;
  }

  /** Messages between receive and settle. */
  get inFlight(): number {
    return this.#handlers.size;
  }

  /** Whether receive loops are running. */
  get alive(): boolean {
    return this.#pollersRunning > 0;
  }

  /**
   * Receives until `intake` aborts; messages already taken keep going until they
   * settle or `work` aborts (then they are released). Resolves when the
   * receive loops have stopped; `drain()` waits for the messages.
   */
  async run(intake: AbortSignal, work: AbortSignal): Promise<void> {
    const batch = Math.min(this.#o.maxBatch, this.#o.maxInFlight);
    // Each poller holds up to `batch` slots while it polls: never more pollers than fit.
    const pollers = this.#o.pollers ??
      Math.max(1, Math.min(10, Math.floor(this.#o.maxInFlight / batch)));
    await Promise.all(
      Array.from(
        { length: pollers },
        (_, index) => this.#poll(index, pollers, batch, intake, work),
      ),
    );
  }

  /** Resolves when every message taken has settled. */
  async drain(): Promise<void> {
    while (this.#handlers.size > 0) await Promise.allSettled([...this.#handlers]);
  }

  async #poll(
    index: number,
    pollers: number,
    batch: number,
    intake: AbortSignal,
    work: AbortSignal,
  ): Promise<void> {
    this.#pollersRunning++;
    let failures = 0;
    try {
      while (!intake.aborted) {
        const pause = this.#o.pausedFor?.();
        if (pause) {
          await this.#sleep(Math.min(Math.max(pause.ms, 50), 1000), intake).catch(() => {});
          continue;
        }
        // SQS economy: the extra long polls run only while receives come back full
        // (a backlog); otherwise one long poll waits for the next messages.
        if (index >= this.#activePollers) {
          await this.#sleep(PARTIAL_PAUSE_MS, intake).catch(() => {});
          continue;
        }
        const slots: Array<() => void> = [];
        try {
          for (let i = 0; i < batch; i++) slots.push(await this.#slots.acquire(intake));
        } catch {
          slots.forEach((release) => release());
          break;
        }
        let messages: SqsMessage[];
        try {
          messages = await this.#o.sqs.receiveMessage({
            queueUrl: this.#o.queueUrl,
            maxNumberOfMessages: batch,
            waitTimeSeconds: this.#o.receiveWaitSeconds,
            visibilityTimeout: this.#o.visibilityTimeoutSeconds,
            signal: this.#pollSignal(intake, work),
          });
          failures = 0;
        } catch (error) {
          slots.forEach((release) => release());
          if (intake.aborted) break;
          failures++;
          // Back off without a hot loop: 200 ms doubling up to 20 s, full jitter.
          const delay = backoffDelay(failures, 200, 20_000, this.#random);
          if (failures === 1 || failures % 10 === 0) {
            this.#o.logger.warn("receive failed; backing off", {
              error,
              failures,
              delay_ms: Math.round(delay),
            });
          }
          await this.#sleep(delay, intake).catch(() => {});
          continue;
        }
        slots.splice(messages.length).forEach((release) => release());
        // What a long poll brings after the stop began is handed back at once, never dropped.
        const late = intake.aborted;
        messages.forEach((message, i) => this.#start(message, slots[i]!, work, late));
        // One more long poll per full receive, one fewer per partial one.
        this.#activePollers = messages.length === batch
          ? Math.min(this.#activePollers + 1, pollers)
          : Math.max(1, this.#activePollers - 1);
        if (
          (messages.length > 0 && messages.length < batch) ||
          (messages.length === 0 && this.#o.receiveWaitSeconds === 0)
        ) {
          // A trickle: let a few more messages gather so the next receive (and the
          // deletes after it) carry more than one or two. Short polls on an empty
          // queue (SQS_RECEIVE_WAIT_SECONDS=0) must not spin either.
          await this.#sleep(PARTIAL_PAUSE_MS, intake).catch(() => {});
        }
      }
    } finally {
      this.#pollersRunning--;
    }
  }

  /**
   * What ends a long poll at shutdown. SQS (and fauxqs) may take messages for a poll
   * whose connection was closed; they come back only after the visibility timeout with
   * one more receive counted, which the redrive policy may turn into a DLQ move. So a
   * poll is left to finish (its messages handed back) unless the queue is known to
   * have no redrive policy; the end of the grace still ends it.
   */
  #pollSignal(intake: AbortSignal, work: AbortSignal): AbortSignal {
    const live = this.#liveRedrive();
    const noRedrive = live.known && live.maxReceiveCount === undefined;
    return noRedrive ? intake : work;
  }

  #start(message: SqsMessage, release: () => void, work: AbortSignal, late = false): void {
    const handler = this.#handle(message, work, late).finally(() => {
      release();
      this.#handlers.delete(handler);
      this.#o.metrics.inFlight.set(undefined, this.#handlers.size);
    });
    this.#handlers.add(handler);
    this.#o.metrics.inFlight.set(undefined, this.#handlers.size);
  }

  /** `late`: received after the stop began; valid messages are handed back untouched. */
  async #handle(sqs: SqsMessage, work: AbortSignal, late: boolean): Promise<void> {
    const o = this.#o;
    const receivedAt = this.#clock();
    const ctx: Context = {
      sqs,
      receivedAt,
      receiveCount: Math.max(1, Number(sqs.attributes.ApproximateReceiveCount ?? "1") || 1),
      redriveKnown: false,
      maxReceiveCount: undefined,
      hasDlq: false,
      deleteOn4xx: o.deleteOn4xx,
      deleteOn5xx: o.deleteOn5xx,
      unknownUserPolicy: o.unknownUserPolicy,
    };
    this.#redrive(ctx);
    o.heartbeat.track(sqs.receiptHandle, receivedAt, o.visibilityTimeoutSeconds);
    try {
      const parsed = parseMessage(sqs.body);
      if (!parsed.ok) {
        // Whatever ids the body still has, so the log line can be matched to other logs.
        const ids = poisonIds(sqs.body);
        if (ids.messageId !== undefined) ctx.messageId = ids.messageId;
        if (ids.userId !== undefined) ctx.userId = ids.userId;
        await this.#settle(ctx, { kind: "poison", reason: parsed.reason });
        return;
      }
      ctx.messageId = parsed.message.message_id;
      ctx.userId = parsed.message.user_id;
      if (late) {
        o.heartbeat.untrack(sqs.receiptHandle);
        return await this.#handBack(ctx);
      }
      await this.#dedupe(parsed.message, ctx, work);
    } catch (error) {
      o.heartbeat.untrack(sqs.receiptHandle);
      // Shutdown past the grace: hand it back now. Anything else is a bug: back off.
      if (work.aborted) return await this.#handBack(ctx);
      const seconds = releaseVisibilitySeconds(
        ctx.receiveCount,
        (this.#clock() - receivedAt) / 1000,
      );
      o.logger.error("unexpected error; releasing the message", {
        error,
        message_id: ctx.messageId,
      });
      try {
        await o.settler.changeVisibility(sqs.receiptHandle, seconds);
        this.#record(
          ctx,
          "released",
          "TRANSIENT",
          String((error as Error)?.message ?? error).slice(0, 200),
        );
      } catch (e) {
        o.logger.warn("could not release a message; it reappears after its visibility timeout", {
          error: e,
          message_id: ctx.messageId,
        });
      }
    } finally {
      o.heartbeat.untrack(sqs.receiptHandle);
    }
  }

  /**
   * Shutdown past the grace: released at once (visibility 0), or, when this receive
   * may be the last the redrive policy allows, re-queued as a fresh copy so SQS never
   * moves a valid message to the DLQ. A copy SQS would not take falls back to a release.
   */
  async #handBack(ctx: Context): Promise<void> {
    const o = this.#o;
    const handle = ctx.sqs.receiptHandle;
    this.#redrive(ctx);
    const action = shutdownAction(ctx);
    if (action.kind === "requeue") {
      try {
        await o.settler.requeue(ctx.sqs, REQUEUE_BUDGET_MS);
        this.#record(ctx, "released", "TRANSIENT", "shutdown: re-queued as a fresh copy");
        return;
      } catch (error) {
        o.logger.warn("could not re-queue a message at shutdown; releasing it", {
          error,
          message_id: ctx.messageId,
        });
      }
    }
    try {
      await o.settler.changeVisibility(handle, 0);
      this.#record(ctx, "released", "TRANSIENT", "shutdown");
    } catch (error) {
      o.logger.warn("could not release a message; it reappears after its visibility timeout", {
        error,
        message_id: ctx.messageId,
      });
    }
  }

  /** Duplicates of an accepted id are deleted; a copy already in work is waited for. */
  async #dedupe(message: InputMessage, ctx: Context, work: AbortSignal): Promise<void> {
    const id = message.message_id;
    for (;;) {
      const first = this.#working.get(id);
      // Asked of the first copy itself too, so this holds even with DEDUP_TTL_SECONDS=0.
      if (this.#accepted.has(id) || (first && await abortable(first, work))) {
        await this.#settle(ctx, { kind: "duplicate" });
        return;
      }
      if (!this.#working.has(id)) break;
    }
    let done!: (accepted: boolean) => void;
    let accepted = false;
    this.#working.set(id, new Promise<boolean>((resolve) => done = resolve));
    try {
      for (let holds = 1;; holds++) {
        const verdict = await this.#attempt(message, ctx, work);
        // The policy may have been read meanwhile (it is retried in the background).
        this.#redrive(ctx);
        if (route(verdict, ctx).kind === "hold" && verdict.kind === "gave_up") {
          // Its last allowed receive: keep it under the heartbeat and try again. A round past
          // the visibility has almost no budget (an open breaker or a Retry-After ends it at
          // once), so wait between rounds or the message spins against the downstream.
          const delayMs = Math.max(1000, backoffDelay(holds, 1000, 30_000, this.#random));
          const heldSeconds = (this.#clock() - ctx.receivedAt + delayMs) / 1000;
          if (holdMustEnd(heldSeconds, this.#o.visibilityTimeoutSeconds)) {
            // SQS keeps no message invisible past 12 h after its receive: dead-letter it with
            // the reason rather than let the redrive policy move it without one.
            await this.#settle(ctx, verdict, {
              kind: "dead_letter",
              category: verdict.category,
              reason: `still failing after 12 h on its last receive: ${verdict.reason}`,
            });
            return;
          }
          this.#o.logger.info("holding a message on its last receive", {
            message_id: id,
            receive_count: ctx.receiveCount,
            retry_in_ms: Math.round(delayMs),
          });
          await this.#sleep(delayMs, work);
          continue;
        }
        accepted = verdict.kind === "accepted";
        await this.#settle(ctx, verdict);
        return;
      }
    } finally {
      this.#working.delete(id);
      done(accepted);
    }
  }

  /**
   * Retries `fn` within a budget that ends before the visibility the receive
   * granted would (the heartbeat covers the overrun of the request in flight).
   * While the target's breaker is open the message waits under the heartbeat
   * for it to close instead of spending its budget and being released.
   */
  async #withRetries<T>(
    target: "enrichment" | "validator",
    fn: () => Promise<T>,
    ctx: Context,
    work: AbortSignal,
  ): Promise<T> {
    // Past the shutdown grace an enrichment call in flight is abandoned so the message is
    // released at once; a submission is not: the validator may accept it, and releasing it
    // meanwhile would let another worker submit it again. HTTP_TIMEOUT_MS bounds the wait.
    const call = target === "enrichment" ? () => abortable(fn(), work) : fn;
    const vtMs = this.#o.visibilityTimeoutSeconds * 1000;
    let budgetMs = Math.max(1000, vtMs * 0.8 - (this.#clock() - ctx.receivedAt));
    for (;;) {
      try {
        return await retry(call, {
          maxAttempts: Number.POSITIVE_INFINITY,
          baseDelayMs: 100,
          maxDelayMs: 5000,
          budgetMs,
          signal: work,
          now: this.#clock,
          random: this.#random,
          sleep: this.#sleep,
          onRetry: (error, attempt) => {
            this.#o.metrics.retries.inc({ target });
            this.#o.logger.debug("retrying", {
              target,
              attempt,
              error,
              message_id: ctx.messageId,
            });
          },
        });
      } catch (error) {
        if (work.aborted || !(error instanceof CircuitOpenError)) throw error;
        await this.#sleep(Math.max(error.remainingMs, 100), work);
        budgetMs = Math.max(1000, vtMs * 0.8);
      }
    }
  }

  async #attempt(message: InputMessage, ctx: Context, work: AbortSignal): Promise<Verdict> {
    let enrichment: Enrichment;
    try {
      enrichment = await this.#withRetries(
        "enrichment",
        () => this.#o.lookup(message.user_id),
        ctx,
        work,
      );
    } catch (error) {
      if (work.aborted) throw error;
      return gaveUp("enrichment", error);
    }
    if (enrichment.status === "unknown_user") {
      if (route({ kind: "unknown_user" }, ctx).kind !== "submit") return { kind: "unknown_user" };
    }
    const document = buildOutputDocument(message, enrichment);
    this.#o.logger.debug("outgoing document", { message_id: message.message_id, document });
    let submission: Submission;
    try {
      submission = await this.#withRetries(
        "validator",
        () => this.#o.submit(document, work),
        ctx,
        work,
      );
    } catch (error) {
      if (work.aborted) throw error;
      return gaveUp("validator", error);
    }
    if (submission.accepted) {
      this.#remember(message.message_id);
      return { kind: "accepted" };
    }
    return { kind: "rejected", reason: `HTTP ${submission.status}: ${submission.reason}` };
  }

  async #settle(ctx: Context, verdict: Verdict, action = route(verdict, ctx)): Promise<void> {
    const o = this.#o;
    const handle = ctx.sqs.receiptHandle;
    // The heartbeat keeps covering a delete or DLQ send that SQS slows down; #release
    // stops it first, since a later extension would undo the release.
    let outcome: Outcome;
    let category: string | undefined;
    let reason: string | undefined;
    switch (action.kind) {
      case "delete":
        await o.settler.delete(handle);
        outcome = action.outcome;
        category = action.category;
        reason = action.reason;
        break;
      case "dead_letter": {
        category = action.category;
        reason = action.reason;
        const sent = await o.settler.deadLetter(handle, ctx.sqs.body, action.category, reason);
        if (sent !== false) {
          outcome = "dead_lettered";
          break;
        }
        // SQS would not take the copy (too large): let the redrive policy move it.
        reason = `${reason} (DLQ send refused; released)`;
        await this.#release(ctx, true);
        outcome = "released";
        break;
      }
      case "release":
        category = action.category;
        reason = action.reason;
        await this.#release(ctx, action.longest);
        outcome = "released";
        break;
      default:
        throw new Error(
          `Cannot settle a message: received the verdict ${action.kind} from route(), expected a settle action`,
        );
    }
    this.#record(ctx, outcome, category, reason);
  }

  async #release(ctx: Context, longest: boolean): Promise<void> {
    this.#o.heartbeat.untrack(ctx.sqs.receiptHandle);
    const seconds = releaseVisibilitySeconds(
      ctx.receiveCount,
      (this.#clock() - ctx.receivedAt) / 1000,
      { longest },
    );
    await this.#o.settler.changeVisibility(ctx.sqs.receiptHandle, seconds);
  }

  #record(ctx: Context, outcome: Outcome, category?: string, reason?: string): void {
    const o = this.#o;
    const now = this.#now();
    const durationMs = this.#clock() - ctx.receivedAt;
    o.metrics.messages.inc({ outcome });
    o.metrics.messageDuration.observe(undefined, durationMs / 1000);
    const sent = Number(ctx.sqs.attributes.SentTimestamp);
    if (outcome !== "released" && Number.isFinite(sent)) {
      o.metrics.messageAge.observe(undefined, Math.max(0, (now - sent) / 1000));
    }
    o.onOutcome?.(outcome, durationMs);
    const fields = {
      message_id: ctx.messageId ?? null,
      user_id: ctx.userId ?? null,
      outcome,
      category: category ?? null,
      reason: reason ?? null,
      receive_count: ctx.receiveCount,
      duration_ms: Math.round(durationMs),
      sqs_message_id: ctx.sqs.messageId,
    };
    // At info the common outcomes are only counted (the summary line); a line each would
    // hit journald's rate limit within seconds. A message gone without acceptance is a warning.
    if (outcome === "accepted" || outcome === "duplicate") o.logger.debug("message", fields);
    else if (outcome === "released") o.logger.info("message", fields);
    else o.logger.warn("message", fields);
  }
}

function gaveUp(target: "enrichment" | "validator", error: unknown): Verdict {
  return {
    kind: "gave_up",
    target,
    category: categoryOf(error),
    reason: error instanceof Error ? error.message.slice(0, 200) : String(error),
    validator5xx: target === "validator" && error instanceof HttpError && error.status >= 500,
  };
}

/** Waits for `promise`, or rejects with the signal's reason when it aborts first. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {}); // abandoned: its failure must not go unhandled
    return Promise.reject(signal.reason);
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * What a dedupe window of `maxEntries` ids holds: the highest rate at which it
 * keeps `ttlSeconds`, and the window at `rate` msg/s (at most the TTL).
 */
export function dedupeCapacity(
  ttlSeconds: number,
  maxEntries: number,
  rate: number,
): { rate: number; maxRate: number; windowSeconds: number } {
  const maxRate = ttlSeconds > 0 ? Math.floor(maxEntries / ttlSeconds) : Number.POSITIVE_INFINITY;
  const windowSeconds = Math.min(ttlSeconds, Math.floor(maxEntries / Math.max(rate, 1e-9)));
  return { rate, maxRate, windowSeconds };
}
