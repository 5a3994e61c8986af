/**
 * One message's way through, as stages: intake (an async iterable of received messages,
 * intake.ts) → parse → dedupe (dedupe.ts) → attempt: enrich and submit with retries
 * (attempt.ts) → settle (finish.ts). Every outcome is decided by `route()`
 * (domain/outcome.ts); the stages only carry it out. Settings (policy), ports (the outside
 * world) and services (clocks, logger, metrics) arrive as separate objects.
 */
import { type InputMessage, parseMessage } from "../domain/message_schema.ts";
import { type Action, route, type Verdict } from "../domain/outcome.ts";
import { poisonIds } from "../domain/poison_ids.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import type { Logger } from "../lib/logger.ts";
import { backoffDelay, sleep as defaultSleep } from "../lib/retry.ts";
import { Attempt, type AttemptPorts, gaveUp } from "./attempt.ts";
import { Dedupe, type DedupeSettings } from "./dedupe.ts";
import { Finisher, type FinishServices } from "./finish.ts";
import type { IdempotencyGate, IdempotencyLock } from "./idempotency_gate.ts";
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
  heartbeat: Pick<VisibilityHeartbeat, "track" | "untrack" | "isStale">;
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
  readonly #calls: RetryingCall;
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
    this.#calls = calls;
    const ownership = {
      isStale: (sqs: MessageContext["sqs"]) => ports.heartbeat.isStale(sqs),
      maySubmit: ports.idempotency &&
        ((lock: IdempotencyLock) => ports.idempotency!.maySubmit(lock)),
    };
    this.#attempt = new Attempt(ports, calls, logger, ownership);
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
   * Dedupe, then rounds until route() says anything but "hold". Past the grace the message is
   * handed back first and its shared claim given back after, so no other copy can run while
   * this one still holds the receipt (docs/failure-handling.md).
   */
  async #work(message: InputMessage, ctx: MessageContext, work: AbortSignal): Promise<void> {
    let claim = this.#dedupe.claim(message.message_id);
    if (claim instanceof Promise) claim = await claim;
    if (claim === "duplicate") return await this.#finish.settle(ctx, { kind: "duplicate" });
    let accepted = false;
    try {
      accepted = await this.#rounds(message, ctx, work);
    } catch (error) {
      if (!work.aborted) throw error;
      this.#p.heartbeat.untrack(ctx.sqs);
      await this.#finish.handBack(ctx);
    } finally {
      // Any way out but acceptance gives the shared claim back, so another copy may run.
      if (ctx.lock) await this.#p.idempotency?.release(ctx.lock);
      claim.done(accepted);
    }
  }

  /**
   * Each round: the shared claim (when the table is set and not held), the attempt, route().
   * On its last allowed receive a transient failure is kept under the heartbeat and tried
   * again, with a pause between rounds (a round past the visibility has almost no budget: an
   * open breaker or a Retry-After ends it at once, so without one the message would spin).
   * A lock that is not certainly ours any more is claimed again, never submitted under.
   * True when the message was accepted.
   */
  async #rounds(message: InputMessage, ctx: MessageContext, work: AbortSignal): Promise<boolean> {
    const shared = this.#p.idempotency;
    let completing: Promise<void> | undefined;
    for (let holds = 1, losses = 0;;) {
      const result = shared && !ctx.lock
        ? await this.#claimShared(shared, message, ctx, work)
        : await this.#attempt.run(message, ctx, work);
      if (result === undefined) continue; // claimed: now the attempt
      if (result.kind === "lock_lost") {
        await shared!.release(ctx.lock!);
        ctx.lock = undefined;
        await this.#sleep(backoffDelay(++losses, 200, 5000, this.#random) + 100, work);
        continue;
      }
      if (result.kind === "accepted") {
        this.#dedupe.remember(message.message_id);
        if (shared && ctx.lock) {
          // Marked COMPLETED while the delete goes out, not before it: a worker killed in
          // between leaves a redelivery to be submitted again either way, and one write
          // less before the delete makes that window no wider than without the table.
          completing = shared.complete(ctx.lock);
          ctx.lock = undefined; // completed, not to be released
        }
      }
      const delayMs = result.kind === "gave_up"
        ? Math.max(1000, backoffDelay(holds, 1000, 30_000, this.#random))
        : 0;
      const action = this.#decide(result, ctx, delayMs);
      if (action.kind !== "hold") {
        try {
          await this.#finish.settle(ctx, result, action);
          return result.kind === "accepted";
        } finally {
          await completing;
        }
      }
      this.#logger.info("holding a message on its last receive", {
        message_id: message.message_id,
        receive_count: ctx.receiveCount,
        retry_in_ms: Math.round(delayMs),
      });
      holds++;
      await this.#sleep(delayMs, work);
    }
  }

  /** route() with the RedrivePolicy as known now and the hold's timing. */
  #decide(verdict: Verdict, ctx: MessageContext, delayMs: number): Action {
    // The policy may have been read meanwhile (it is read again in the background).
    refreshRedrive(ctx, this.#redrive(), this.#p.settler.hasDlq);
    ctx.hold = {
      secondsSinceReceive: (this.#monotonic() - ctx.receivedAt + delayMs) / 1000,
      visibilityTimeoutSeconds: this.#s.visibilityTimeoutSeconds,
    };
    return route(verdict, ctx);
  }

  /**
   * Claims the message_id in the shared table, retried under the heartbeat while the table
   * fails (its breaker open: as long as that lasts). Undefined when the claim is ours (in
   * `ctx.lock`); otherwise the verdict: a duplicate another worker accepted, a message_id
   * reused with another payload, or the table failing past the retry budget.
   */
  async #claimShared(
    shared: IdempotencyGate,
    message: InputMessage,
    ctx: MessageContext,
    work: AbortSignal,
  ): Promise<Verdict | undefined> {
    let claim;
    try {
      const handle = ctx.sqs.receiptHandle;
      claim = await this.#calls.run("table", () => shared.claim(message, handle, work), ctx, work);
    } catch (error) {
      if (work.aborted) throw error;
      return gaveUp("table", error);
    }
    if (claim.kind === "proceed") {
      ctx.lock = claim.lock;
      return undefined;
    }
    if (claim.kind === "mismatch") return { kind: "poison", reason: MESSAGE_ID_REUSED };
    this.#dedupe.remember(message.message_id);
    return { kind: "duplicate" };
  }
}
