/**
 * One message's way through, as stages: intake (an async iterable of received messages,
 * intake.ts) → parse → dedupe (dedupe.ts) → attempt: enrich and submit with retries
 * (attempt.ts) → settle (finish.ts). Every outcome is decided by `route()`
 * (domain/outcome.ts); the stages only carry it out. Settings (policy), ports (the outside
 * world) and services (clocks, logger, metrics) arrive as separate objects.
 */
import { type InputMessage, parseMessage } from "../domain/message_schema.ts";
import { route } from "../domain/outcome.ts";
import { poisonIds } from "../domain/poison_ids.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import type { Logger } from "../lib/logger.ts";
import { backoffDelay, sleep as defaultSleep } from "../lib/retry.ts";
import { Attempt, type AttemptPorts } from "./attempt.ts";
import { Dedupe, type DedupeSettings } from "./dedupe.ts";
import { Finisher, type FinishServices } from "./finish.ts";
import type { IdempotencyGate } from "./idempotency_gate.ts";
import { MESSAGE_ID_REUSED } from "../domain/idempotency.ts";
import { Intake, type IntakePorts, type IntakeSettings, type Received } from "./intake.ts";
import {
  type MessageContext,
  newContext,
  type RedriveState,
  refreshRedrive,
  type RoutePolicy,
} from "./message_context.ts";
import { RetryingCall } from "./retrying_call.ts";
import type { Settler } from "./settle.ts";
import type { VisibilityHeartbeat } from "./visibility_heartbeat.ts";

/** Policy: what the configuration says. */
export interface PipelineSettings extends IntakeSettings, DedupeSettings, RoutePolicy {
  /**
   * From the queue's RedrivePolicy when known at construction; undefined when it has
   * none. Ignored when the `redrive` port is given.
   */
  maxReceiveCount?: number | undefined;
}

/** The outside world the stages talk to. */
export interface PipelinePorts extends IntakePorts, AttemptPorts {
  settler: Pick<Settler, "delete" | "changeVisibility" | "deadLetter" | "requeue" | "hasDlq">;
  heartbeat: Pick<VisibilityHeartbeat, "track" | "untrack">;
  /** The live RedrivePolicy (RedriveWatcher.state): until known, every receive may be the last. */
  redrive?: () => RedriveState;
  /** The shared record across workers (IDEMPOTENCY_TABLE); unset: in-process dedupe only. */
  idempotency?: IdempotencyGate | undefined;
}

/** Clocks, randomness, logs and metrics. */
export interface PipelineServices {
  metrics: SluiceMetrics;
  logger: Logger;
  onOutcome?: FinishServices["onOutcome"];
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

export class Pipeline {
  readonly #s: PipelineSettings;
  readonly #p: PipelinePorts;
  readonly #monotonic: () => number;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #logger: Logger;
  readonly #intake: Intake;
  readonly #dedupe: Dedupe;
  readonly #attempt: Attempt;
  readonly #finish: Finisher;
  /** Messages between receive and settle, and drain()'s waiters for that to reach 0. */
  #active = 0;
  #idle: Array<() => void> = [];

  constructor(settings: PipelineSettings, ports: PipelinePorts, services: PipelineServices) {
    this.#s = settings;
    this.#p = ports;
    const now = services.now ?? Date.now;
    this.#monotonic = services.monotonic ?? (() => performance.now());
    this.#random = services.random ?? Math.random;
    this.#sleep = services.sleep ?? defaultSleep;
    this.#logger = services.logger;
    const { logger, metrics } = services;
    const monotonic = this.#monotonic, random = this.#random, sleep = this.#sleep;
    this.#intake = new Intake(settings, ports, { logger, random, sleep });
    this.#dedupe = new Dedupe(settings, { metrics, logger, now });
    const calls = new RetryingCall(settings.visibilityTimeoutSeconds, {
      metrics,
      logger,
      monotonic,
      random,
      sleep,
    });
    this.#attempt = new Attempt(ports, calls, logger);
    this.#finish = new Finisher(
      { settler: ports.settler, heartbeat: ports.heartbeat, redrive: () => this.#redrive() },
      { metrics, logger, onOutcome: services.onOutcome, now, monotonic },
    );
  }

  /** Messages between receive and settle. */
  get inFlight(): number {
    return this.#active;
  }

  /** Whether receive loops are running. */
  get alive(): boolean {
    return this.#intake.alive;
  }

  /**
   * Receives until `intake` aborts; messages already taken keep going until they
   * settle or `work` aborts (then they are handed back). Resolves when the
   * receive loops have stopped; `drain()` waits for the messages.
   */
  async run(intake: AbortSignal, work: AbortSignal): Promise<void> {
    const signals = { stop: intake, pollSignal: () => this.#pollSignal(intake, work) };
    for await (const batch of this.#intake.receiveBatches(signals)) {
      for (const received of batch) this.#start(received, work);
    }
  }

  /** Resolves when every message taken has settled. */
  async drain(): Promise<void> {
    while (this.#active > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** The RedrivePolicy as known now: live from the port, else the one given at construction. */
  #redrive(): RedriveState {
    return this.#p.redrive?.() ?? { known: true, maxReceiveCount: this.#s.maxReceiveCount };
  }

  /**
   * What ends a long poll at shutdown. SQS (and fauxqs) may take messages for a poll
   * whose connection was closed; they come back only after the visibility timeout with
   * one more receive counted, which the redrive policy may turn into a DLQ move. So a
   * poll is left to finish (its messages handed back) unless the queue is known to
   * have no redrive policy; the end of the grace still ends it.
   */
  #pollSignal(intake: AbortSignal, work: AbortSignal): AbortSignal {
    const live = this.#redrive();
    return live.known && live.maxReceiveCount === undefined ? intake : work;
  }

  #start(received: Received, work: AbortSignal): void {
    this.#active++;
    // #process never rejects (its errors become a release); it counts itself out.
    void this.#process(received, work);
  }

  #settled(received: Received): void {
    received.done();
    if (--this.#active > 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }

  /** Parse, then work on it; a message received after the stop began is handed back. */
  async #process(received: Received, work: AbortSignal): Promise<void> {
    const { message: sqs, late } = received;
    const ctx = newContext(sqs, this.#monotonic(), this.#s);
    refreshRedrive(ctx, this.#redrive(), this.#p.settler.hasDlq);
    this.#p.heartbeat.track(sqs, ctx.receivedAt, this.#s.visibilityTimeoutSeconds);
    try {
      const parsed = parseMessage(sqs.body);
      if (!parsed.ok) {
        // Whatever ids the body still has, so the log line can be matched to other logs.
        const ids = poisonIds(sqs.body);
        if (ids.messageId !== undefined) ctx.messageId = ids.messageId;
        if (ids.userId !== undefined) ctx.userId = ids.userId;
        return await this.#finish.settle(ctx, { kind: "poison", reason: parsed.reason });
      }
      ctx.messageId = parsed.message.message_id;
      ctx.userId = parsed.message.user_id;
      if (late) {
        this.#p.heartbeat.untrack(sqs);
        return await this.#finish.handBack(ctx);
      }
      await this.#work(parsed.message, ctx, work);
    } catch (error) {
      this.#p.heartbeat.untrack(sqs);
      // Shutdown past the grace: hand it back now. Anything else is a bug: back off.
      if (work.aborted) return await this.#finish.handBack(ctx);
      await this.#finish.afterError(ctx, error);
    } finally {
      this.#p.heartbeat.untrack(sqs);
      this.#settled(received);
    }
  }

  /**
   * Dedupe, then attempts until route() says anything but "hold": on its last allowed
   * receive a transient failure is kept under the heartbeat and tried again, with a pause
   * between rounds (a round past the visibility has almost no budget: an open breaker or a
   * Retry-After ends it at once, so without one the message would spin).
   */
  async #work(message: InputMessage, ctx: MessageContext, work: AbortSignal): Promise<void> {
    const id = message.message_id;
    let claim = this.#dedupe.claim(id, work);
    if (claim instanceof Promise) claim = await claim;
    if (claim === "duplicate") return await this.#finish.settle(ctx, { kind: "duplicate" });
    let accepted = false;
    let completing: Promise<void> | undefined;
    const shared = this.#p.idempotency;
    try {
      if (shared && !await this.#claimShared(shared, message, ctx, work)) return;
      for (let holds = 1;; holds++) {
        const verdict = await this.#attempt.run(message, ctx, work);
        if (verdict.kind === "accepted") {
          this.#dedupe.remember(id);
          accepted = true;
          if (shared && ctx.lock) {
            const lock = ctx.lock;
            ctx.lock = undefined; // completed, not to be released
            // Marked COMPLETED while the delete goes out, not before it: a worker killed in
            // between leaves a redelivery to be submitted again either way, and one write
            // less before the delete makes that window no wider than without the table.
            // complete() never throws.
            completing = shared.complete(lock);
          }
        }
        // The policy may have been read meanwhile (it is retried in the background).
        refreshRedrive(ctx, this.#redrive(), this.#p.settler.hasDlq);
        const delayMs = verdict.kind === "gave_up"
          ? Math.max(1000, backoffDelay(holds, 1000, 30_000, this.#random))
          : 0;
        ctx.hold = {
          secondsSinceReceive: (this.#monotonic() - ctx.receivedAt + delayMs) / 1000,
          visibilityTimeoutSeconds: this.#s.visibilityTimeoutSeconds,
        };
        const action = route(verdict, ctx);
        if (action.kind !== "hold") {
          try {
            return await this.#finish.settle(ctx, verdict, action);
          } finally {
            await completing;
          }
        }
        this.#logger.info("holding a message on its last receive", {
          message_id: id,
          receive_count: ctx.receiveCount,
          retry_in_ms: Math.round(delayMs),
        });
        await this.#sleep(delayMs, work);
      }
    } finally {
      // Any way out but acceptance gives the shared claim back, so another copy may run.
      if (shared && ctx.lock) await shared.release(ctx.lock);
      claim.done(accepted);
    }
  }

  /**
   * Claims the message_id in the shared table; false when the message was settled here
   * instead (a duplicate another worker accepted, or a message_id reused with another payload).
   */
  async #claimShared(
    shared: IdempotencyGate,
    message: InputMessage,
    ctx: MessageContext,
    work: AbortSignal,
  ): Promise<boolean> {
    const claim = await shared.claim(message, ctx.sqs.receiptHandle, work);
    if (claim.kind === "proceed") {
      ctx.lock = claim.lock;
      return true;
    }
    if (claim.kind === "duplicate") this.#dedupe.remember(message.message_id);
    const verdict = claim.kind === "duplicate"
      ? { kind: "duplicate" as const }
      : { kind: "poison" as const, reason: MESSAGE_ID_REUSED };
    await this.#finish.settle(ctx, verdict);
    return false;
  }
}
