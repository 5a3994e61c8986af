/**
 * Intake: SQS's messages as an async iterable. Several long polls feed it; each takes a
 * slot per message it may receive before it polls, so at most MAX_IN_FLIGHT messages are
 * between receive and settle, and a consumer that stops pulling stops the polls. A
 * message's slot comes back when its `done()` is called.
 */
import type { SqsClient, SqsMessage } from "../adapters/sqs_client.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { backoffDelay } from "../lib/retry.ts";
import { Semaphore } from "../lib/semaphore.ts";

export interface IntakeSettings {
  queueUrl: string;
  /** SQS_MAX_BATCH */
  maxBatch: number;
  /** SQS_RECEIVE_WAIT_SECONDS */
  receiveWaitSeconds: number;
  /** SQS_VISIBILITY_TIMEOUT_SECONDS */
  visibilityTimeoutSeconds: number;
  /** MAX_IN_FLIGHT */
  maxInFlight: number;
  /** Concurrent long polls. Default: as many as MAX_IN_FLIGHT fills with full batches, ≤ 10. */
  pollers?: number;
  /** A FIFO queue (docs/fifo.md): receives ask for the message group and carry an attempt id. */
  fifo?: boolean;
}

const FIFO_ATTRIBUTES = { moreSystemAttributes: ["MessageGroupId", "SequenceNumber"] } as const;

export interface IntakePorts {
  sqs: Pick<SqsClient, "receiveMessage">;
  /**
   * Why intake should pause now (a breaker is open, half the validator's limit is queued),
   * and for how long (1 ms to 1 s); undefined = go.
   */
  pausedFor?: () => { reason: string; ms: number } | undefined;
}

export interface IntakeServices {
  logger: Logger;
  /** Pauses and the backoff's jitter. */
  clock: Clock;
}

export interface IntakeSignals {
  /** Stops new polls (the stop began). */
  stop: AbortSignal;
  /** Ends a poll still open: `stop` itself, or the end of the grace (see Pipeline). */
  pollSignal: () => AbortSignal;
}

/** One received message; `done()` gives its slot back. */
export interface Received {
  message: SqsMessage;
  /** Received after the stop began: to be handed back, not worked on. */
  late: boolean;
  done: () => void;
}

/** How long a poller waits after a partial receive, ms: a little latency for fuller batches. */
const PARTIAL_PAUSE_MS = 50;

export class Intake {
  readonly #settings: IntakeSettings;
  readonly #ports: IntakePorts;
  readonly #services: IntakeServices;
  readonly #slots: Semaphore;
  #ready: Received[] = [];
  #wake: (() => void) | undefined;
  #pollersRunning = 0;
  /** How many of the long polls run now; grows while receives come back full. */
  #activePollers = 1;

  constructor(settings: IntakeSettings, ports: IntakePorts, services: IntakeServices) {
    this.#settings = settings;
    this.#ports = ports;
    this.#services = services;
    this.#slots = new Semaphore({ limit: settings.maxInFlight });
  }

  /** Whether receive loops are running. */
  get alive(): boolean {
    return this.#pollersRunning > 0;
  }

  /** Polls until `signals.stop` aborts; yields each message as it arrives. */
  async *receive(signals: IntakeSignals): AsyncGenerator<Received> {
    for await (const batch of this.receiveBatches(signals)) yield* batch;
  }

  /**
   * receive(), whole receives at a time (every message that arrived since the last yield): what
   * the pipeline iterates, so a message costs no generator round trip of its own.
   */
  async *receiveBatches(signals: IntakeSignals): AsyncGenerator<Received[]> {
    const batch = Math.min(this.#settings.maxBatch, this.#settings.maxInFlight);
    // Each poller holds up to `batch` slots while it polls: never more pollers than fit.
    const pollers = this.#settings.pollers ??
      Math.max(1, Math.min(10, Math.floor(this.#settings.maxInFlight / batch)));
    this.#pollersRunning = pollers;
    const polling = Array.from(
      { length: pollers },
      (_, index) =>
        this.#poll(index, pollers, batch, signals).finally(() => {
          this.#pollersRunning--;
          this.#wake?.();
        }),
    );
    try {
      for (;;) {
        if (this.#ready.length > 0) {
          const next = this.#ready;
          this.#ready = [];
          yield next;
          continue;
        }
        if (this.#pollersRunning === 0) break;
        await new Promise<void>((resolve) => this.#wake = resolve);
        this.#wake = undefined;
      }
    } finally {
      await Promise.all(polling);
    }
  }

  #push(received: Received[]): void {
    if (this.#ready.length === 0) this.#ready = received;
    else this.#ready.push(...received);
    this.#wake?.();
  }

  async #poll(index: number, pollers: number, batch: number, signals: IntakeSignals) {
    let failures = 0;
    // FIFO: a receive retried after a lost answer carries the same attempt id, so SQS replays
    // that answer instead of hiding its messages for a visibility timeout.
    let attemptId: string | undefined;
    const { stop } = signals;
    while (!stop.aborted) {
      const pause = this.#ports.pausedFor?.() ??
        // SQS economy: the extra long polls run only while receives come back full
        // (a backlog); otherwise one long poll waits for the next messages.
        (index >= this.#activePollers ? { ms: PARTIAL_PAUSE_MS } : undefined);
      if (pause) {
        await this.#services.clock.sleep(Math.min(Math.max(pause.ms, 1), 1000), stop).catch(
          () => {},
        );
        continue;
      }
      const slots = await this.#takeSlots(batch, stop);
      if (!slots) break;
      let messages: SqsMessage[];
      if (this.#settings.fifo) attemptId ??= this.#attemptId(index);
      try {
        messages = await this.#receive(batch, attemptId, signals.pollSignal());
        failures = 0;
        attemptId = undefined;
      } catch (error) {
        slots.forEach((release) => release());
        if (stop.aborted) break;
        await this.#backOff(++failures, error, stop);
        continue;
      }
      slots.splice(messages.length).forEach((release) => release());
      // What a long poll brings after the stop began is handed back at once, never dropped.
      const late = stop.aborted;
      this.#push(messages.map((message, i) => ({ message, late, done: slots[i]! })));
      // One more long poll per full receive, one fewer per partial one. A FIFO queue may answer
      // one message group per receive however deep it is (docs/fifo.md): any message is a backlog.
      const fifo = this.#settings.fifo === true;
      this.#activePollers = messages.length === batch || (fifo && messages.length > 0)
        ? Math.min(this.#activePollers + 1, pollers)
        : Math.max(1, this.#activePollers - 1);
      const trickle = !fifo && messages.length > 0 && messages.length < batch;
      if (trickle || (messages.length === 0 && this.#settings.receiveWaitSeconds === 0)) {
        // A trickle: let a few more messages gather so the next receive (and the deletes
        // after it) carry more than one or two. Short polls on an empty queue
        // (SQS_RECEIVE_WAIT_SECONDS=0) must not spin either.
        await this.#services.clock.sleep(PARTIAL_PAUSE_MS, stop).catch(() => {});
      }
    }
  }

  #receive(batch: number, attemptId: string | undefined, signal: AbortSignal) {
    return this.#ports.sqs.receiveMessage({
      queueUrl: this.#settings.queueUrl,
      maxNumberOfMessages: batch,
      waitTimeSeconds: this.#settings.receiveWaitSeconds,
      visibilityTimeout: this.#settings.visibilityTimeoutSeconds,
      ...(this.#settings.fifo ? FIFO_ATTRIBUTES : {}),
      receiveRequestAttemptId: attemptId,
      signal,
    });
  }

  #attemptId(poller: number): string {
    const draw = () => Math.floor(this.#services.clock.random() * 2 ** 48).toString(36);
    return `sluice-${poller}-${draw()}${draw()}`;
  }

  /** `count` slots, or undefined (none held) when `stop` aborts first. */
  async #takeSlots(count: number, stop: AbortSignal): Promise<Array<() => void> | undefined> {
    const slots: Array<() => void> = [];
    try {
      for (let i = 0; i < count; i++) {
        // A free slot is taken at once; past the stop, acquire() refuses.
        slots.push(
          (stop.aborted ? undefined : this.#slots.tryAcquire()) ?? await this.#slots.acquire(stop),
        );
      }
      return slots;
    } catch {
      slots.forEach((release) => release());
      return undefined;
    }
  }

  /** Back off without a hot loop: 200 ms doubling up to 20 s, full jitter. */
  async #backOff(failures: number, error: unknown, stop: AbortSignal): Promise<void> {
    const delay = backoffDelay(failures, 200, 20_000, () => this.#services.clock.random());
    if (failures === 1 || failures % 10 === 0) {
      this.#services.logger.warn("receive failed; backing off", {
        error,
        failures,
        delay_ms: Math.round(delay),
      });
    }
    await this.#services.clock.sleep(delay, stop).catch(() => {});
  }
}
