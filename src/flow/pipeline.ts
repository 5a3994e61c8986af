/**
 * One message's way through (docs/architecture.md): intake (intake.ts) → parse → dedupe
 * (dedupe.ts) → the shared claim when IDEMPOTENCY_TABLE is set (idempotency_gate.ts) → the
 * attempt: profile and submission (attempt.ts) → one decision, `#decide` (route() in
 * domain/outcome.ts, asked nowhere else) → carried out once (finish.ts). Settings (policy),
 * ports (the outside world) and services (clock, logger, metrics) arrive apart.
 */
import { type InputMessage, parseMessage, type ParseResult } from "../domain/message_schema.ts";
import { type Action, route, type Verdict } from "../domain/outcome.ts";
import { poisonIds } from "../domain/poison_ids.ts";
import type { MessageAttributes, Unwrapped } from "../domain/envelope.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import { MESSAGE_ID_REUSED } from "../domain/idempotency.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { backoffDelay } from "../lib/retry.ts";
import { traceFields, Tracer } from "../lib/tracer.ts";
import { createSampler } from "../lib/trace_sampler.ts";
import { Attempt, type AttemptPorts, gaveUp } from "./attempt.ts";
import { Dedupe, type DedupeSettings } from "./dedupe.ts";
import { FifoGroups, type GroupEnd } from "./fifo_groups.ts";
import { Finisher, type FinishServices } from "./finish.ts";
import type { IdempotencyGate, IdempotencyLock } from "./idempotency_gate.ts";
import { Intake, type IntakePorts, type IntakeSettings, type Received } from "./intake.ts";
import {
  type MessageContext,
  newContext,
  type RedriveState,
  routeContext,
  type RoutePolicy,
} from "./message_context.ts";
import { rateGate, type RateSettings } from "./rate_limiter.ts";
import type { FleetRate } from "./rate_table.ts";
import { beginMessageTrace, queueNameOf } from "./message_trace.ts";
import { RetryingCall } from "./retrying_call.ts";
import type { Settler } from "./settle.ts";
import type { VisibilityHeartbeat } from "./visibility_heartbeat.ts";
import type { Opened, Payloads } from "./payloads.ts";

/** Policy: what the configuration says. */
export interface PipelineSettings {
  intake: IntakeSettings;
  dedupe: DedupeSettings;
  policy: RoutePolicy;
  /** RATE_LIMIT and RATE_LIMIT_KEY; unset: no limit, nothing allocated or called per message. */
  rate?: RateSettings | undefined;
}

/** The outside world the stages talk to. */
export interface PipelinePorts extends IntakePorts, Omit<AttemptPorts, "isStale" | "maySubmit"> {
  settler: Pick<Settler, "delete" | "changeVisibility" | "deadLetter" | "requeue" | "hasDlq">;
  heartbeat: Pick<VisibilityHeartbeat, "track" | "untrack" | "isStale">;
  /** The live RedrivePolicy (RedriveWatcher.state): until known, every receive may be the last. */
  redrive: () => RedriveState;
  /** The shared record across workers (IDEMPOTENCY_TABLE); unset: in-process dedupe only. */
  idempotency?: IdempotencyGate | undefined;
  /** The fleet's rate window (RATE_LIMIT_TABLE); unset: RATE_LIMIT holds per worker. */
  rateFleet?: FleetRate | undefined;
  /** SNS envelopes and S3 pointers (SNS_ENVELOPE, S3_PAYLOADS); unset: every body is the message. */
  payloads?: Pick<Payloads, "mayWrap" | "mayHide" | "unwrap" | "open" | "accepted"> | undefined;
}

/** Time, logs and metrics. */
export interface PipelineServices {
  clock: Clock;
  metrics: SluiceMetrics;
  logger: Logger;
  onOutcome?: FinishServices["onOutcome"];
  /** Each message's span and the context it passes on. Default: propagation only, nothing recorded. */
  tracer?: Tracer;
}

/** A message as received, before its work. */
interface Arrival {
  received: Received;
  /** Monotonic ms. */
  receivedAt: number;
  graceOver: AbortSignal;
}

/** A message's shared lock while this copy holds it. */
interface Held {
  lock: IdempotencyLock | undefined;
}

const SHUTDOWN: Verdict = { kind: "hand_back", reason: "shutdown" };
const BEHIND: Verdict = {
  kind: "hand_back",
  reason: "an earlier message of its FIFO group went back",
};
const DUPLICATE: Verdict = { kind: "duplicate" };

export class Pipeline {
  readonly #settings: PipelineSettings;
  readonly #ports: PipelinePorts;
  readonly #services: PipelineServices;
  readonly #intake: Intake;
  readonly #dedupe: Dedupe;
  readonly #calls: RetryingCall;
  readonly #attempt: Attempt;
  readonly #finish: Finisher;
  /** FIFO queues: each message group in delivery order, one message at a time. */
  readonly #groups: FifoGroups<Arrival> | undefined;
  readonly #tracer: Tracer;
  readonly #queue: { name: string; spanName: string };
  /** Messages between receive and settle, and drain()'s waiters for that to reach 0. */
  #active = 0;
  #idle: Array<() => void> = [];

  constructor(settings: PipelineSettings, ports: PipelinePorts, services: PipelineServices) {
    this.#settings = settings;
    this.#ports = ports;
    this.#services = services;
    const { clock, metrics, logger } = services;
    this.#tracer = services.tracer ??
      new Tracer({ sampler: createSampler("parentbased_always_on"), clock });
    const name = queueNameOf(settings.intake.queueUrl);
    this.#queue = { name, spanName: `process ${name}` };
    this.#intake = new Intake(settings.intake, ports, { logger, clock });
    this.#dedupe = new Dedupe(settings.dedupe, { metrics, logger, clock });
    this.#calls = new RetryingCall(settings.intake.visibilityTimeoutSeconds, services);
    const gate = ports.idempotency;
    this.#attempt = new Attempt(
      {
        lookup: ports.lookup,
        cached: ports.cached,
        submit: ports.submit,
        isStale: (sqs) => ports.heartbeat.isStale(sqs),
        maySubmit: gate && ((lock) => gate.maySubmit(lock)),
        rate: settings.rate &&
          rateGate(settings.rate, settings.intake.maxInFlight, services, ports.rateFleet),
      },
      this.#calls,
      logger,
      settings.policy.unknownUserPolicy,
    );
    this.#finish = new Finisher(ports, services);
    this.#groups = settings.intake.fifo
      ? new FifoGroups<Arrival>({
        work: (a) => this.#process(a),
        handBack: (a) => this.#handBack(a),
      }, {
        clock,
        onActive: (groups) => metrics.fifoGroupsActive.set(undefined, groups),
        onWait: (seconds) => metrics.fifoGroupWait.observe(undefined, seconds),
      })
      : undefined;
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
   * Receives until `stopIntake` aborts; messages already taken keep going until they settle
   * or `graceOver` aborts (then they are handed back). Resolves when the receive loops have
   * stopped; `drain()` waits for the messages.
   */
  async run(stopIntake: AbortSignal, graceOver: AbortSignal): Promise<void> {
    const signals = { stop: stopIntake, pollSignal: () => this.#pollSignal(stopIntake, graceOver) };
    for await (const batch of this.#intake.receiveBatches(signals)) {
      for (const received of batch) this.#start(received, graceOver);
    }
  }

  /** Resolves when every message taken has settled. */
  async drain(): Promise<void> {
    while (this.#active > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /**
   * What ends a long poll at shutdown: the stop itself, so an idle worker stops at once. A
   * poll aborted that way may still have taken messages on SQS's side; they come back after
   * the visibility timeout with one more receive counted. Where every receive is the last
   * (maxReceiveCount 1) that would dead-letter them untried, so there the poll is left to
   * finish and its messages are handed back; the end of the grace still ends it.
   */
  #pollSignal(stopIntake: AbortSignal, graceOver: AbortSignal): AbortSignal {
    const live = this.#ports.redrive();
    return live.known && live.maxReceiveCount === 1 ? graceOver : stopIntake;
  }

  #start(received: Received, graceOver: AbortSignal): void {
    this.#active++;
    const receivedAt = this.#services.clock.monotonic();
    const { visibilityTimeoutSeconds } = this.#settings.intake;
    // From its receive: a FIFO message waiting behind its group is covered too.
    this.#ports.heartbeat.track(received.message, receivedAt, visibilityTimeoutSeconds);
    const arrival = { received, receivedAt, graceOver };
    const group = this.#groups && received.message.attributes.MessageGroupId;
    // #process never rejects (its errors become a release); it counts itself out.
    if (group) this.#groups!.add(group, arrival);
    else void this.#process(arrival);
  }

  /** A message's end in this worker: no more heartbeat, its slot back, its span over. */
  #letGo(ctx: MessageContext, received: Received): void {
    this.#ports.heartbeat.untrack(ctx.sqs);
    this.#settled(received);
    ctx.trace.end();
  }

  #settled(received: Received): void {
    received.done();
    if (--this.#active > 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }

  /**
   * Parse, then the work; a message received after the stop began is handed back. Whether it
   * went back to the queue (its FIFO group's later messages then go back too).
   */
  #process(arrival: Arrival): Promise<GroupEnd> {
    const sqs = arrival.received.message;
    const payloads = this.#ports.payloads;
    // A body that may be an SNS envelope or an S3 pointer takes the longer way; a plain one is
    // parsed as it is, at no further cost (docs/payloads.md): not even a promise of its own here.
    if (payloads?.mayWrap(sqs)) return this.#unwrapped(arrival, payloads, undefined);
    const parsed = parseMessage(sqs.body);
    if (!parsed.ok && payloads?.mayHide(sqs)) return this.#unwrapped(arrival, payloads, parsed);
    return this.#parsed(arrival, parsed, undefined);
  }

  /** The work of a parsed message (or its poison end); it settles here. */
  async #parsed(
    arrival: Arrival,
    parsed: ParseResult,
    opened: Opened | undefined,
    trace = this.#trace(arrival),
  ): Promise<GroupEnd> {
    const { received, graceOver } = arrival;
    const { message: sqs } = received;
    const ids = parsed.ok
      ? { messageId: parsed.message.message_id, userId: parsed.message.user_id }
      // Whatever ids a poison body still has, so its log line can be matched to other logs.
      : poisonIds(opened ? opened.body : sqs.body);
    const ctx = newContext(sqs, arrival.receivedAt, ids, trace, opened);
    let end: Action["kind"] | undefined;
    try {
      if (!parsed.ok) end = await this.#conclude(ctx, { kind: "poison", reason: parsed.reason });
      else if (received.late) end = await this.#conclude(ctx, SHUTDOWN);
      else end = await this.#work(parsed.message, ctx, graceOver);
    } catch (error) {
      end = await this.#afterError(ctx, error, graceOver);
    } finally {
      opened?.release();
      this.#letGo(ctx, received);
    }
    return groupEnd(end);
  }

  /**
   * A body that may be wrapped: unwrapped (its S3 object fetched), then worked as any other.
   * One received after the stop began goes back unfetched.
   */
  async #unwrapped(
    arrival: Arrival,
    payloads: NonNullable<PipelinePorts["payloads"]>,
    first: ParseResult | undefined,
  ): Promise<GroupEnd> {
    const { received, graceOver } = arrival;
    const sqs = received.message;
    const unwrapped = payloads.unwrap(sqs);
    // An SNS envelope's attributes count as the message's: its trace context too.
    const envelope = unwrapped.kind === "plain" ? undefined : unwrapped.attributes;
    const ctx = newContext(sqs, arrival.receivedAt, {}, this.#trace(arrival, envelope));
    let end: Action["kind"] | undefined;
    try {
      if (received.late) end = await this.#conclude(ctx, SHUTDOWN);
      else {
        const result = await this.#open(ctx, payloads, unwrapped, first, graceOver);
        if (result.kind === "opened") {
          return await this.#parsed(arrival, result.parsed, result, ctx.trace);
        }
        end = result.end;
      }
    } catch (error) {
      end = await this.#afterError(ctx, error, graceOver);
    }
    this.#letGo(ctx, received);
    return groupEnd(end);
  }

  /**
   * The body behind the SQS body. An S3 fetch that keeps failing ends as route() says: released,
   * or on its last allowed receive held under the heartbeat and fetched again after a pause.
   */
  async #open(
    ctx: MessageContext,
    payloads: NonNullable<PipelinePorts["payloads"]>,
    unwrapped: Unwrapped,
    first: ParseResult | undefined,
    graceOver: AbortSignal,
  ): Promise<Opened | { kind: "ended"; end: Action["kind"] }> {
    const { clock, logger } = this.#services;
    const run = (fetch: () => Promise<string>) => this.#calls.run("s3", fetch, ctx, graceOver);
    for (let holds = 1;; holds++) {
      const result = await payloads.open(ctx.sqs, unwrapped, first, run, graceOver);
      if (result.kind === "opened") return result;
      const delayMs = Math.max(1000, backoffDelay(holds, 1000, 30_000, clock.random));
      const action = this.#decide(ctx, result.verdict, delayMs);
      if (action.kind !== "hold") {
        await this.#finish.carryOut(ctx, action);
        return { kind: "ended", end: action.kind };
      }
      logger.info("holding a message on its last receive", {
        sqs_message_id: ctx.sqs.messageId,
        receive_count: ctx.receiveCount,
        retry_in_ms: Math.round(delayMs),
      });
      await clock.sleep(delayMs, graceOver);
    }
  }

  /** The message's span, continuing the context it came with (`envelope`: an SNS envelope's). */
  #trace(arrival: Arrival, envelope?: MessageAttributes) {
    const at = { receivedAt: arrival.receivedAt, queue: this.#queue };
    return beginMessageTrace(this.#tracer, arrival.received.message, at, envelope);
  }

  /** Past the grace it is handed back; anything else is a bug: said, and backed off. */
  async #afterError(ctx: MessageContext, error: unknown, graceOver: AbortSignal) {
    const { logger } = this.#services;
    if (!graceOver.aborted) {
      logger.error("unexpected error; releasing the message", {
        error,
        message_id: ctx.messageId,
        ...traceFields(ctx.trace),
      });
    }
    const reason = String((error as Error)?.message ?? error).slice(0, 200);
    try {
      return await this.#conclude(ctx, graceOver.aborted ? SHUTDOWN : { kind: "failed", reason });
    } catch (again) {
      logger.warn("could not release a message; it reappears after its visibility timeout", {
        error: again,
        message_id: ctx.messageId,
        ...traceFields(ctx.trace),
      });
      return undefined;
    }
  }

  /** A FIFO message behind one of its group that went back: back to the queue, unworked. */
  async #handBack(arrival: Arrival): Promise<void> {
    const sqs = arrival.received.message;
    const ctx = newContext(sqs, arrival.receivedAt, poisonIds(sqs.body), this.#trace(arrival));
    try {
      await this.#conclude(ctx, BEHIND);
    } catch (error) {
      await this.#afterError(ctx, error, arrival.graceOver);
    } finally {
      this.#letGo(ctx, arrival.received);
    }
  }

  /**
   * The one decision: route() with the RedrivePolicy as known now (it is read again in the
   * background) and, for a hold, the time the next round would end.
   */
  #decide(ctx: MessageContext, verdict: Verdict, delayMs = 0): Action {
    const { intake, policy } = this.#settings;
    const hold = {
      secondsSinceReceive: (this.#services.clock.monotonic() - ctx.receivedAt + delayMs) / 1000,
      visibilityTimeoutSeconds: intake.visibilityTimeoutSeconds,
    };
    const redrive = this.#ports.redrive();
    return route(verdict, routeContext(ctx, policy, redrive, this.#ports.settler.hasDlq, hold));
  }

  /** A verdict that is never held (only a spent retry budget is), decided and carried out. */
  async #conclude(ctx: MessageContext, verdict: Verdict): Promise<Action["kind"]> {
    const action = this.#decide(ctx, verdict);
    if (action.kind !== "hold") await this.#finish.carryOut(ctx, action);
    return action.kind;
  }

  /**
   * Dedupe, then rounds until the message ends. Past the grace it is handed back first and
   * its shared claim given back after, so no other copy can run while this one still holds
   * the receipt (docs/failure-handling.md).
   */
  async #work(
    message: InputMessage,
    ctx: MessageContext,
    graceOver: AbortSignal,
  ): Promise<Action["kind"]> {
    const id = message.message_id;
    let claim = this.#dedupe.claim(id);
    if (claim === "behind") claim = await this.#dedupe.afterFirst(id);
    if (claim === "duplicate") return await this.#conclude(ctx, DUPLICATE);
    const held: Held = { lock: undefined };
    let end: Action | undefined;
    try {
      end = await this.#rounds(message, ctx, graceOver, held);
      return end.kind;
    } catch (error) {
      if (!graceOver.aborted) throw error;
      return await this.#conclude(ctx, SHUTDOWN);
    } finally {
      // Any way out but acceptance gives the shared claim back, so another copy may run.
      if (held.lock) await this.#ports.idempotency?.release(held.lock);
      claim.done(end?.kind === "delete" && end.outcome === "accepted");
    }
  }

  /**
   * Each round: the shared claim (when the table is set and not held), the attempt, the
   * decision. On its last allowed receive a transient failure is held under the heartbeat
   * and tried again after a pause (a round past the visibility has almost no budget: an
   * open breaker or a Retry-After ends it at once, so without one it would spin). A lock
   * not certainly ours any more is given back and claimed again, never submitted under.
   * The action carried out.
   */
  async #rounds(
    message: InputMessage,
    ctx: MessageContext,
    graceOver: AbortSignal,
    held: Held,
  ): Promise<Exclude<Action, { kind: "hold" }>> {
    const { clock, logger } = this.#services;
    const gate = this.#ports.idempotency;
    for (let holds = 1, losses = 0;;) {
      const result = gate && !held.lock
        ? await this.#claimShared(gate, message, ctx, graceOver, held)
        : await this.#attempt.run(message, ctx, graceOver, held.lock);
      if (result === undefined) continue; // claimed: the attempt next
      if (result.kind === "lock_lost") {
        await gate!.release(held.lock!);
        held.lock = undefined;
        await clock.sleep(backoffDelay(++losses, 200, 5000, clock.random) + 100, graceOver);
        continue;
      }
      const delayMs = result.kind === "gave_up"
        ? Math.max(1000, backoffDelay(holds, 1000, 30_000, clock.random))
        : result.kind === "deferred"
        ? result.seconds * 1000
        : 0;
      const action = this.#decide(ctx, result, delayMs);
      if (action.kind !== "hold") return await this.#end(ctx, result, action, held, graceOver);
      logger.info("holding a message on its last receive", {
        message_id: message.message_id,
        receive_count: ctx.receiveCount,
        retry_in_ms: Math.round(delayMs),
        ...traceFields(ctx.trace),
      });
      holds++;
      await clock.sleep(delayMs, graceOver);
    }
  }

  /**
   * Carries out the decision. An accepted message is remembered, and its shared record
   * marked COMPLETED while the delete goes out, not before it: a worker killed in between
   * leaves a redelivery to be submitted again either way, and one write less before the
   * delete makes that window no wider than without the table.
   */
  async #end(
    ctx: MessageContext,
    verdict: Verdict,
    action: Exclude<Action, { kind: "hold" }>,
    held: Held,
    graceOver: AbortSignal,
  ): Promise<Exclude<Action, { kind: "hold" }>> {
    const accepted = verdict.kind === "accepted";
    let completing: Promise<void> | undefined;
    if (accepted) {
      this.#dedupe.remember(ctx.messageId!);
      if (held.lock) completing = this.#ports.idempotency!.complete(held.lock, graceOver);
      held.lock = undefined; // completed, not to be released
    }
    try {
      await this.#finish.carryOut(ctx, action);
      // Its S3 object goes once the message is gone from the queue (S3_PAYLOAD_DELETE).
      if (accepted && ctx.pointer) this.#ports.payloads?.accepted(ctx.pointer);
    } finally {
      await completing;
    }
    return action;
  }

  /**
   * Claims the message_id in the shared table, retried under the heartbeat while the table
   * fails (while its breaker is open: as long as that lasts). Undefined when the claim is
   * ours (in `held`); otherwise the verdict: a duplicate another worker accepted, a
   * message_id reused with another payload, or the table failing past the retry budget.
   */
  async #claimShared(
    gate: IdempotencyGate,
    message: InputMessage,
    ctx: MessageContext,
    graceOver: AbortSignal,
    held: Held,
  ): Promise<Verdict | undefined> {
    let claim;
    try {
      const handle = ctx.sqs.receiptHandle;
      const claiming = () => gate.claim(message, handle, graceOver);
      claim = await this.#calls.run("table", claiming, ctx, graceOver);
    } catch (error) {
      if (graceOver.aborted) throw error;
      return gaveUp("table", error);
    }
    if (claim.kind === "proceed") {
      held.lock = claim.lock;
      return undefined;
    }
    if (claim.kind === "mismatch") return { kind: "poison", reason: MESSAGE_ID_REUSED };
    this.#dedupe.remember(message.message_id);
    return DUPLICATE;
  }
}

/** Whether a message's end took it off the queue (its FIFO group goes on) or sent it back. */
function groupEnd(end: Action["kind"] | undefined): GroupEnd {
  return end === "delete" || end === "dead_letter" ? "done" : "went_back";
}
