/**
 * One message's way through: receive (several long polls keep up to
 * MAX_IN_FLIGHT messages in work), parse, dedupe, enrich, submit, settle. What
 * happens at the end is decided by `route()` (outcome.ts); this file only
 * carries it out.
 */
import { categoryOf, CircuitOpenError, HttpError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";
import { type InputMessage, parseMessage } from "../domain/message_schema.ts";
import {
  maxVisibilitySeconds,
  type Outcome,
  releaseVisibilitySeconds,
  route,
  type RouteContext,
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
import { TtlCache } from "../lib/ttl_cache.ts";
import type { Submission } from "../adapters/validator_client.ts";
import type { VisibilityHeartbeat } from "./visibility_heartbeat.ts";
import type { IdempotencyGate, IdempotencyLock } from "./idempotency_gate.ts";
import { MESSAGE_ID_REUSED } from "../domain/idempotency.ts";

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
  /** From the queue's RedrivePolicy; undefined when it has none. */
  maxReceiveCount: number | undefined;
  /** Concurrent long polls. Default: as many as MAX_IN_FLIGHT fills with full batches, at most 10. */
  pollers?: number;
  sqs: Pick<SqsClient, "receiveMessage">;
  settler: Pick<Settler, "delete" | "changeVisibility" | "deadLetter" | "hasDlq">;
  heartbeat: Pick<VisibilityHeartbeat, "track" | "untrack">;
  /** The enrichment for a user id (ProfileSource.lookup); throws transient errors. */
  lookup: (userId: string) => Promise<Enrichment>;
  /** Submits to the validator behind its breaker and limit. */
  submit: (document: OutputDocument) => Promise<Submission>;
  /** Why intake should pause now (a breaker is open), and for how long; undefined = go. */
  pausedFor?: () => { reason: string; ms: number } | undefined;
  /** The shared record across workers (IDEMPOTENCY_TABLE); unset: in-process dedupe only. */
  idempotency?: IdempotencyGate | undefined;
  metrics: SluiceMetrics;
  logger: Logger;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** How long a poller waits after a partial receive, ms: a little latency for fuller batches. */
const PARTIAL_PAUSE_MS = 50;

interface Context extends RouteContext {
  sqs: SqsMessage;
  receivedAt: number;
  messageId?: string;
  userId?: string;
  /** The shared idempotency lock, while this copy holds it. */
  lock?: IdempotencyLock | undefined;
}

export class Pipeline {
  readonly #o: PipelineOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #slots: Semaphore;
  readonly #accepted: TtlCache<string, true>;
  /** message_id → resolves, when the copy being worked on is done, to whether it was accepted. */
  readonly #working = new Map<string, Promise<boolean>>();
  readonly #handlers = new Set<Promise<void>>();
  #pollersRunning = 0;
  /** How many of the long polls run now; grows while receives come back full. */
  #activePollers = 1;

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#slots = new Semaphore({ limit: options.maxInFlight });
    this.#accepted = new TtlCache({
      ttlMs: options.dedupTtlSeconds * 1000,
      // ~150 bytes an id: a bound on memory whatever DEDUP_TTL_SECONDS says.
      maxSize: 250_000,
      now: this.#now,
    });
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
            signal: intake,
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
        messages.forEach((message, i) => this.#start(message, slots[i]!, work));
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

  #start(message: SqsMessage, release: () => void, work: AbortSignal): void {
    const handler = this.#handle(message, work).finally(() => {
      release();
      this.#handlers.delete(handler);
      this.#o.metrics.inFlight.set(undefined, this.#handlers.size);
    });
    this.#handlers.add(handler);
    this.#o.metrics.inFlight.set(undefined, this.#handlers.size);
  }

  async #handle(sqs: SqsMessage, work: AbortSignal): Promise<void> {
    const o = this.#o;
    const receivedAt = this.#now();
    const ctx: Context = {
      sqs,
      receivedAt,
      receiveCount: Math.max(1, Number(sqs.attributes.ApproximateReceiveCount ?? "1") || 1),
      maxReceiveCount: o.maxReceiveCount,
      hasDlq: o.settler.hasDlq,
      deleteOn4xx: o.deleteOn4xx,
      deleteOn5xx: o.deleteOn5xx,
      unknownUserPolicy: o.unknownUserPolicy,
    };
    o.heartbeat.track(sqs.receiptHandle, receivedAt, o.visibilityTimeoutSeconds);
    try {
      const parsed = parseMessage(sqs.body);
      if (!parsed.ok) {
        await this.#settle(ctx, { kind: "poison", reason: parsed.reason });
        return;
      }
      ctx.messageId = parsed.message.message_id;
      ctx.userId = parsed.message.user_id;
      await this.#dedupe(parsed.message, ctx, work);
    } catch (error) {
      o.heartbeat.untrack(sqs.receiptHandle);
      // Shutdown past the grace: hand it back now. Anything else is a bug: back off.
      const seconds = work.aborted
        ? 0
        : releaseVisibilitySeconds(ctx.receiveCount, (this.#now() - receivedAt) / 1000);
      if (!work.aborted) {
        o.logger.error("unexpected error; releasing the message", {
          error,
          message_id: ctx.messageId,
        });
      }
      try {
        await o.settler.changeVisibility(sqs.receiptHandle, seconds);
        this.#record(
          ctx,
          "released",
          "TRANSIENT",
          work.aborted ? "shutdown" : String((error as Error)?.message ?? error).slice(0, 200),
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
      if (this.#o.idempotency && !await this.#claimShared(message, ctx, work)) return;
      for (let holds = 1;; holds++) {
        const verdict = await this.#attempt(message, ctx, work);
        if (verdict === LOCK_LOST) {
          // The message is another worker's now: never hold it (nor dead-letter it at 12 h).
          const { category, reason } = LOCK_LOST;
          await this.#settle(ctx, verdict, { kind: "release", category, reason, longest: false });
          return;
        }
        if (route(verdict, ctx).kind === "hold" && verdict.kind === "gave_up") {
          // Its last allowed receive: keep it under the heartbeat and try again. A round past
          // the visibility has almost no budget (an open breaker or a Retry-After ends it at
          // once), so wait between rounds or the message spins against the downstream.
          const delayMs = Math.max(1000, backoffDelay(holds, 1000, 30_000, this.#random));
          const heldSeconds = (this.#now() - ctx.receivedAt + delayMs) / 1000;
          if (maxVisibilitySeconds(heldSeconds) < this.#o.visibilityTimeoutSeconds) {
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
        if (accepted && ctx.lock) {
          const lock = ctx.lock;
          ctx.lock = undefined; // completed, not to be released
          await this.#o.idempotency!.complete(lock);
        }
        await this.#settle(ctx, verdict);
        return;
      }
    } finally {
      // Any way out but acceptance gives the shared claim back, so another copy may run.
      if (ctx.lock) await this.#o.idempotency!.release(ctx.lock);
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
    let budgetMs = Math.max(1000, vtMs * 0.8 - (this.#now() - ctx.receivedAt));
    for (;;) {
      try {
        return await retry(call, {
          maxAttempts: Number.POSITIVE_INFINITY,
          baseDelayMs: 100,
          maxDelayMs: 5000,
          budgetMs,
          signal: work,
          now: this.#now,
          random: this.#random,
          sleep: this.#sleep,
          onRetry: () => this.#o.metrics.retries.inc({ target }),
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
    if (ctx.lock && !ctx.lock.held) return LOCK_LOST;
    let submission: Submission;
    try {
      submission = await this.#withRetries("validator", () => this.#o.submit(document), ctx, work);
    } catch (error) {
      if (work.aborted) throw error;
      return gaveUp("validator", error);
    }
    if (submission.accepted) {
      this.#accepted.set(message.message_id, true);
      return { kind: "accepted" };
    }
    return { kind: "rejected", reason: `HTTP ${submission.status}: ${submission.reason}` };
  }

  /**
   * Claims the message_id in the shared table; false when the message was settled
   * here instead (a duplicate another worker accepted, or a reused message_id).
   */
  async #claimShared(message: InputMessage, ctx: Context, work: AbortSignal): Promise<boolean> {
    const claim = await this.#o.idempotency!.claim(message, ctx.sqs.receiptHandle, work);
    if (claim.kind === "proceed") {
      ctx.lock = claim.lock;
      return true;
    }
    if (claim.kind === "duplicate") this.#accepted.set(message.message_id, true);
    await this.#settle(
      ctx,
      claim.kind === "duplicate" ? claim : { kind: "poison", reason: MESSAGE_ID_REUSED },
    );
    return false;
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
        throw new Error(`route() gave ${action.kind} at settle time`);
    }
    this.#record(ctx, outcome, category, reason);
  }

  async #release(ctx: Context, longest: boolean): Promise<void> {
    this.#o.heartbeat.untrack(ctx.sqs.receiptHandle);
    const seconds = releaseVisibilitySeconds(
      ctx.receiveCount,
      (this.#now() - ctx.receivedAt) / 1000,
      { longest },
    );
    await this.#o.settler.changeVisibility(ctx.sqs.receiptHandle, seconds);
  }

  #record(ctx: Context, outcome: Outcome, category?: string, reason?: string): void {
    const o = this.#o;
    const now = this.#now();
    o.metrics.messages.inc({ outcome });
    o.metrics.messageDuration.observe(undefined, (now - ctx.receivedAt) / 1000);
    const sent = Number(ctx.sqs.attributes.SentTimestamp);
    if (outcome !== "released" && Number.isFinite(sent)) {
      o.metrics.messageAge.observe(undefined, Math.max(0, (now - sent) / 1000));
    }
    const fields = {
      message_id: ctx.messageId ?? null,
      user_id: ctx.userId ?? null,
      outcome,
      category: category ?? null,
      reason: reason ?? null,
      receive_count: ctx.receiveCount,
      duration_ms: now - ctx.receivedAt,
      sqs_message_id: ctx.sqs.messageId,
    };
    if (outcome === "accepted" || outcome === "duplicate") o.logger.info("message", fields);
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

/** Another worker took the shared lock over: never submit; give the message back. */
const LOCK_LOST = {
  kind: "gave_up",
  target: "validator",
  category: "TRANSIENT",
  reason: "idempotency lock lost to another worker",
  validator5xx: false,
} as const satisfies Verdict;

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
