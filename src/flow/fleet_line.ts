/**
 * RATE_LIMIT_TABLE's waiting (docs/rate-limits.md): after its slot in this worker's window, a
 * message takes one in the fleet's (rate_table.ts). The messages of one key ask the table one at
 * a time, in the order they got their local slots, so a key's line costs one request per slot
 * and none while it waits. The wait follows the same rules as the local one: in memory while
 * short and within the key's share of MAX_IN_FLIGHT, else the message is deferred. A failing
 * table is the table's: the message waits, and asks again after a backoff.
 */
import { abortable } from "../lib/async.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { backoffDelay } from "../lib/retry.ts";
import type { FleetRate } from "./rate_table.ts";

export interface FleetLineSettings {
  limit: number;
  windowMs: number;
  /** Most messages of one key in its line, and of all keys together; beyond them a message is deferred. */
  keyHeld: number;
  totalHeld: number;
  /** Longest wait in memory, ms. */
  maxWaitMs: number;
}

export interface FleetLineServices {
  clock: Pick<Clock, "now" | "sleep" | "random">;
  logger: Logger;
  /** A message found the fleet's window full (it waits or is deferred). */
  onLimited: () => void;
  /** The messages in all lines now. */
  onHeld: (held: number) => void;
}

export type FleetAdmission = { kind: "slot" } | { kind: "deferred"; seconds: number };

interface Line {
  tail: Promise<void>;
  length: number;
  /** The message at the head was refused a slot and waits for the time named. */
  refused: boolean;
}

const SLOT: FleetAdmission = { kind: "slot" };

export class FleetLine {
  readonly #settings: FleetLineSettings;
  readonly #fleet: Pick<FleetRate, "take">;
  readonly #services: FleetLineServices;
  readonly #lines = new Map<string, Line>();
  #held = 0;

  constructor(
    settings: FleetLineSettings,
    fleet: Pick<FleetRate, "take">,
    services: FleetLineServices,
  ) {
    this.#settings = settings;
    this.#fleet = fleet;
    this.#services = services;
  }

  /** Messages in the lines now. */
  get held(): number {
    return this.#held;
  }

  /**
   * The fleet's slot for `key`, after the key's earlier messages got theirs. `mayDefer` false
   * (a retry of a submission): it waits however long the slot is. Rejects with the signal's
   * reason when `signal` aborts.
   */
  async admit(key: string, signal: AbortSignal, mayDefer: boolean): Promise<FleetAdmission> {
    const s = this.#settings;
    let line = this.#lines.get(key);
    // Behind a refused head, within the shares: a line still moving takes every arrival.
    if (mayDefer && line?.refused && (line.length >= s.keyHeld || this.#held >= s.totalHeld)) {
      this.#services.onLimited();
      // Each message ahead needs a slot: about a window per N of them.
      return {
        kind: "deferred",
        seconds: Math.max(1, Math.ceil(line.length / s.limit * s.windowMs / 1000)),
      };
    }
    if (!line) this.#lines.set(key, line = { tail: Promise.resolve(), length: 0, refused: false });
    const ahead = line.tail;
    let leave!: () => void;
    line.tail = new Promise((resolve) => leave = resolve);
    this.#change(line, 1);
    let head = false;
    try {
      await abortable(ahead, signal);
      head = true;
      return await this.#take(key, line, signal, mayDefer);
    } finally {
      if (head) line.refused = false;
      this.#change(line, -1);
      if (line.length === 0 && this.#lines.get(key) === line) this.#lines.delete(key);
      // One that gave up its place lets the next go only when the one ahead of it is done.
      if (head) leave();
      else void ahead.then(leave);
    }
  }

  /** Asks the table until it gives a slot, waiting for the time it names. */
  async #take(
    key: string,
    line: Line,
    signal: AbortSignal,
    mayDefer: boolean,
  ): Promise<FleetAdmission> {
    const { clock, logger } = this.#services;
    for (let failures = 0, limited = false;;) {
      let answer;
      try {
        answer = await this.#fleet.take(key, signal);
      } catch (error) {
        if (signal.aborted) throw error;
        // No message ids: a failing table repeats this per request; the logger folds repeats.
        logger.warn("rate-limit table request failed; the message waits", { error });
        await clock.sleep(backoffDelay(++failures, 200, 5000, () => clock.random()), signal);
        continue;
      }
      line.refused = !answer.ok;
      if (answer.ok) return SLOT;
      if (!limited) this.#services.onLimited();
      limited = true;
      const wait = Math.max(0, answer.at - clock.now());
      if (mayDefer && wait > this.#settings.maxWaitMs) {
        return { kind: "deferred", seconds: Math.ceil(wait / 1000) };
      }
      await clock.sleep(wait, signal);
    }
  }

  #change(line: Line, by: number): void {
    line.length += by;
    this.#held += by;
    this.#services.onHeld(this.#held);
  }
}
