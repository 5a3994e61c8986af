/**
 * Per-key rate limits in memory (docs/rate-limits.md): an exact sliding window per key,
 * checked just before a submission. A slot counts as in the window from its admission and
 * takes its time from the validator's answer, so however long the validator's queue, the
 * network or a busy event loop delay the request, the validator never sees more than N of a
 * key in any window. A message over its key's limit waits here for its
 * slot while the wait is short and the key's held messages stay within their share of
 * MAX_IN_FLIGHT; otherwise it is told to come back when its slot comes (deferred), and
 * that slot is kept for it. Waits resume in arrival order per key. Keys idle for a
 * window are forgotten; the key count and the promised slots are bounded.
 */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import { nextSlot, type RateKeySpec, type RateLimit } from "../domain/rate_limit.ts";
import type { Counter, Gauge } from "../lib/metrics.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import { onAbort } from "../lib/on_abort.ts";
import { RepeatLimiter } from "../lib/repeat_limiter.ts";
import type { AttemptPorts } from "./attempt.ts";
import { type FleetAdmission, FleetLine } from "./fleet_line.ts";
import type { FleetRate } from "./rate_table.ts";

export interface RateLimiterSettings extends RateLimit {
  /** MAX_IN_FLIGHT: what the held messages' shares are taken of. */
  maxInFlight: number;
  /** Longest wait in memory, ms; a longer one is deferred. Default 5000. */
  maxWaitMs?: number;
  /** Share of MAX_IN_FLIGHT one key's held messages may take. Default 0.1. */
  keyShare?: number;
  /** Share all keys' held messages together may take. Default 0.5. */
  totalShare?: number;
}

export interface RateLimiterServices {
  clock: Pick<Clock, "monotonic" | "timer">;
  logger: Logger;
  metrics: {
    rateLimited: Pick<Counter, "inc">;
    rateLimitHeld: Pick<Gauge, "set">;
    rateLimitKeys: Pick<Gauge, "set">;
  };
}

/**
 * A slot taken. Each try of the submission calls `next` before it (the first takes the slot
 * admitted, a retry waits for another) and `done` after its answer (its time enters the
 * window); `release` when the attempt ends gives back a slot no try used.
 */
export interface RateTicket {
  readonly kind: "slot";
  next(signal: AbortSignal): Promise<void>;
  done(): void;
  release(): void;
}

/** A slot taken, or the deferral: come back in `seconds`. */
export type Admission = RateTicket | { kind: "deferred"; seconds: number };

/** A promised slot: a message waiting here (`wake` set) or one deferred to come back. */
interface Slot {
  at: number;
  id: string;
  wake: (() => void) | undefined;
}

interface KeyWindow {
  /** Submission times, ascending, the last `limit` of them. */
  past: number[];
  /** Promised slots, ascending by `at`. */
  plan: Slot[];
  /** Slots taken whose try has not been answered yet: in the window until it is. */
  pending: number;
  waiting: number;
  limited: boolean;
  cancelTimer: (() => void) | undefined;
}

const MAX_WAIT_MS = 5000;
const KEY_SHARE = 0.1;
const TOTAL_SHARE = 0.5;
/** Timestamps all windows may keep together (8 bytes each): the key count follows from it. */
const TIMESTAMP_BUDGET = 4_000_000;
const MAX_KEYS = 100_000;
/** Deferred messages whose slots are kept, all keys together. */
const MAX_PROMISES = 100_000;
/** How late a deferred message may come back and still find its slot kept, ms. */
const PROMISE_GRACE_MS = 5000;
const NOTHING: readonly Slot[] = [];
const DONE = Promise.resolve();

export class RateLimiter {
  readonly #rate: RateLimit;
  readonly #maxWaitMs: number;
  readonly #keyHeld: number;
  readonly #totalHeld: number;
  readonly #maxKeys: number;
  readonly #services: RateLimiterServices;
  readonly #lines: RepeatLimiter;
  /** In least-recently-used order (a use moves a key to the end). */
  readonly #keys = new Map<string, KeyWindow>();
  #held = 0;
  #promises = 0;

  constructor(settings: RateLimiterSettings, services: RateLimiterServices) {
    this.#rate = { limit: settings.limit, windowMs: settings.windowMs };
    this.#maxWaitMs = settings.maxWaitMs ?? MAX_WAIT_MS;
    this.#keyHeld = share(settings.maxInFlight, settings.keyShare ?? KEY_SHARE);
    this.#totalHeld = share(settings.maxInFlight, settings.totalShare ?? TOTAL_SHARE);
    this.#maxKeys = Math.min(MAX_KEYS, Math.max(1, Math.floor(TIMESTAMP_BUDGET / settings.limit)));
    this.#services = services;
    this.#lines = new RepeatLimiter({ clock: services.clock, intervalMs: 60_000 });
  }

  /** Keys with a window now. */
  get keys(): number {
    return this.#keys.size;
  }

  /** Messages waiting here now. */
  get held(): number {
    return this.#held;
  }

  /**
   * Takes a slot for `key` now, or after a wait here, or says when to come back. `id` (the
   * SQS message id) finds the slot kept for a deferred message. Rejects with the signal's
   * reason when `signal` aborts during a wait.
   */
  admit(key: string, id: string, signal: AbortSignal): Promise<Admission> {
    const now = this.#services.clock.monotonic();
    const w = this.#window(key, now);
    this.#dropLapsed(w, now);
    const own = w.plan.findIndex((slot) => slot.id === id && slot.wake === undefined);
    if (own >= 0) {
      this.#promises--;
      const slot = w.plan[own]!;
      if (slot.at - now <= this.#maxWaitMs) {
        return this.#wait(w, slot, signal).then(this.#ticket(w));
      }
      w.plan.splice(own, 1);
    }
    const at = nextSlot(this.#rate, now, w.past, w.plan, w.pending);
    if (at <= now) {
      if (w.limited && w.plan.length === 0) this.#limitedChange(key, w, false);
      w.pending++;
      return Promise.resolve(this.#ticket(w)());
    }
    this.#services.metrics.rateLimited.inc();
    if (!w.limited) this.#limitedChange(key, w, true);
    const wait = at - now;
    if (wait <= this.#maxWaitMs && w.waiting < this.#keyHeld && this.#held < this.#totalHeld) {
      const slot = insert(w.plan, { at, id, wake: undefined });
      return this.#wait(w, slot, signal).then(this.#ticket(w));
    }
    const seconds = Math.ceil(wait / 1000);
    if (this.#promises < MAX_PROMISES) {
      insert(w.plan, { at: now + seconds * 1000, id, wake: undefined });
      this.#promises++;
    }
    return Promise.resolve({ kind: "deferred", seconds });
  }

  /** Makes the ticket of a slot of `w` already counted in its `pending`. */
  #ticket(w: KeyWindow): () => RateTicket {
    return () => {
      let unused = true;
      const back = () => {
        w.pending--;
        this.#pump(w);
      };
      return {
        kind: "slot",
        next: (signal) => {
          if (!unused) return this.#retrySlot(w, signal);
          unused = false;
          return DONE;
        },
        done: () => {
          record(w, this.#services.clock.monotonic(), this.#rate.limit);
          back();
        },
        release: () => {
          if (!unused) return;
          unused = false;
          back();
        },
      };
    };
  }

  /** Another slot for a retry: at once if the window has room, else in line (no share limit). */
  #retrySlot(w: KeyWindow, signal: AbortSignal): Promise<void> {
    const now = this.#services.clock.monotonic();
    const at = nextSlot(this.#rate, now, w.past, w.plan, w.pending);
    if (at <= now) {
      w.pending++;
      return DONE;
    }
    return this.#wait(w, insert(w.plan, { at, id: "", wake: undefined }), signal);
  }

  /** Waits in `slot`'s place until the window has room at or after its time. */
  #wait(w: KeyWindow, slot: Slot, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#holding(w, 1);
      const forget = onAbort(signal, () => {
        const index = w.plan.indexOf(slot);
        if (index < 0) return;
        w.plan.splice(index, 1);
        this.#holding(w, -1);
        reject(signal.reason);
        this.#pump(w);
      });
      slot.wake = () => {
        forget();
        resolve();
      };
      if (!signal.aborted) this.#pump(w);
    });
  }

  /** Admits the key's first waiter while the window has room; else a timer for when it will. */
  #pump(w: KeyWindow): void {
    w.cancelTimer?.();
    w.cancelTimer = undefined;
    const now = this.#services.clock.monotonic();
    this.#dropLapsed(w, now);
    for (;;) {
      const index = w.plan.findIndex((slot) => slot.wake !== undefined);
      if (index < 0) return;
      const slot = w.plan[index]!;
      // Planned afresh: a waiter ahead that gave up its place moves this one up; the slots
      // kept for deferred messages ahead of it still count.
      const ahead = index === 0 ? NOTHING : w.plan.slice(0, index);
      const at = nextSlot(this.#rate, now, w.past, ahead, w.pending);
      if (at > now) {
        w.cancelTimer = this.#services.clock.timer(at - now, () => this.#pump(w));
        return;
      }
      w.plan.splice(index, 1);
      this.#holding(w, -1);
      w.pending++;
      slot.wake!();
    }
  }

  /** Deferred slots whose message did not come back in time are given up. */
  #dropLapsed(w: KeyWindow, now: number): void {
    while (w.plan.length > 0) {
      const first = w.plan[0]!;
      if (first.wake !== undefined || first.at >= now - PROMISE_GRACE_MS) return;
      w.plan.shift();
      this.#promises--;
    }
  }

  #holding(w: KeyWindow, change: number): void {
    w.waiting += change;
    this.#held += change;
    this.#services.metrics.rateLimitHeld.set(undefined, this.#held);
  }

  /** The key's window, now its most recently used; idle keys forgotten, the count bounded. */
  #window(key: string, now: number): KeyWindow {
    let w = this.#keys.get(key);
    if (w !== undefined) this.#keys.delete(key);
    this.#forgetIdle(now, 2);
    if (w === undefined) {
      w = { past: [], plan: [], pending: 0, waiting: 0, limited: false, cancelTimer: undefined };
      this.#makeRoom();
    }
    this.#keys.set(key, w);
    this.#services.metrics.rateLimitKeys.set(undefined, this.#keys.size);
    return w;
  }

  /**
   * Forgets up to `count` least recently used keys with nothing in their window or plan (slots
   * kept for deferred messages that never came back are given up first).
   */
  #forgetIdle(now: number, count: number): void {
    for (const [key, w] of this.#keys) {
      if (count-- <= 0) return;
      this.#dropLapsed(w, now);
      if (w.plan.length > 0 || w.pending > 0) return;
      const last = w.past[w.past.length - 1];
      if (last !== undefined && last > now - this.#rate.windowMs) return;
      this.#keys.delete(key);
      if (w.limited) this.#limitedChange(key, w, false);
    }
  }

  /**
   * At the key bound the least recently used key with no message waiting is forgotten (its
   * window starts afresh: the bound wins over exactness for a key unused the longest).
   */
  #makeRoom(): void {
    if (this.#keys.size < this.#maxKeys) return;
    for (const [key, w] of this.#keys) {
      if (w.waiting > 0 || w.pending > 0) continue;
      this.#promises -= w.plan.length;
      this.#keys.delete(key);
      return;
    }
  }

  /** The info line when a key starts or stops being limited, itself rate-limited per key. */
  #limitedChange(key: string, w: KeyWindow, limited: boolean): void {
    w.limited = limited;
    const line = this.#lines.admit(limited ? `+${key}` : `-${key}`);
    if (!line.write) return;
    const text = limited
      ? "a rate-limit key reached its limit: its excess waits for its slots"
      : "a rate-limit key is under its limit again";
    this.#services.logger.info(text, {
      rate_limit_key: key,
      limit: this.#rate.limit,
      window_ms: this.#rate.windowMs,
      ...(line.repeated > 0 ? { repeated: line.repeated } : {}),
    });
  }
}

/** Records a submission at `now`, keeping the last `limit`. */
function record(w: KeyWindow, now: number, limit: number): void {
  w.past.push(now);
  if (w.past.length > limit) w.past.shift();
}

/** Inserts `slot` in `at` order (nearly always at the end). */
function insert(plan: Slot[], slot: Slot): Slot {
  let index = plan.length;
  while (index > 0 && plan[index - 1]!.at > slot.at) index--;
  plan.splice(index, 0, slot);
  return slot;
}

/** The message's RATE_LIMIT_KEY value; undefined (not limited) when it has none. */
export function rateKeyOf(spec: RateKeySpec, userId: string, sqs: SqsMessage): string | undefined {
  switch (spec.kind) {
    case "user_id":
      return userId;
    case "message_group":
      return sqs.attributes.MessageGroupId;
    case "attribute":
      return sqs.messageAttributes[spec.name]?.StringValue;
  }
}

/** RATE_LIMIT with RATE_LIMIT_KEY. */
export interface RateSettings extends RateLimit {
  key: RateKeySpec;
}

/**
 * The attempt's rate port: the message's slot, or its deferral (a verdict). With `fleet`
 * (RATE_LIMIT_TABLE) a slot in this worker's window is followed by one in the fleet's.
 */
export function rateGate(
  settings: RateSettings,
  maxInFlight: number,
  services: RateLimiterServices & { clock: Pick<Clock, "now" | "sleep" | "random"> },
  fleet?: FleetRate,
): NonNullable<AttemptPorts["rate"]> {
  if (fleet) return fleetGate(settings, maxInFlight, services, fleet);
  const limiter = new RateLimiter({ ...settings, maxInFlight }, services);
  return (message, ctx, graceOver) => {
    const key = rateKeyOf(settings.key, message.user_id, ctx.sqs);
    if (key === undefined) return Promise.resolve(undefined);
    return limiter.admit(key, ctx.sqs.messageId, graceOver);
  };
}

/** rateGate with RATE_LIMIT_TABLE: the local slot, then the fleet's, in the key's line. */
function fleetGate(
  settings: RateSettings,
  maxInFlight: number,
  services: RateLimiterServices & { clock: Pick<Clock, "now" | "sleep" | "random"> },
  fleet: FleetRate,
): NonNullable<AttemptPorts["rate"]> {
  const { metrics } = services;
  let localHeld = 0;
  const line: FleetLine = new FleetLine(
    {
      ...settings,
      keyHeld: share(maxInFlight, KEY_SHARE),
      totalHeld: share(maxInFlight, TOTAL_SHARE),
      maxWaitMs: MAX_WAIT_MS,
    },
    fleet,
    {
      clock: services.clock,
      logger: services.logger,
      onLimited: () => metrics.rateLimited.inc(),
      onHeld: (held) => metrics.rateLimitHeld.set(undefined, localHeld + held),
    },
  );
  const limiter = new RateLimiter({ ...settings, maxInFlight }, {
    ...services,
    metrics: {
      ...metrics,
      rateLimitHeld: {
        set: (_labels, held) =>
          metrics.rateLimitHeld.set(undefined, (localHeld = held) + line.held),
      },
    },
  });
  return async (message, ctx, graceOver) => {
    const key = rateKeyOf(settings.key, message.user_id, ctx.sqs);
    if (key === undefined) return undefined;
    const local = await limiter.admit(key, ctx.sqs.messageId, graceOver);
    if (local.kind === "deferred") return local;
    let first: FleetAdmission;
    try {
      first = await line.admit(key, graceOver, true);
    } catch (error) {
      local.release();
      throw error;
    }
    if (first.kind === "deferred") {
      local.release();
      return first;
    }
    let tries = 0;
    return {
      ...local,
      // A retry's local slot, then its fleet slot (waited for: the message is mid-submission).
      next: async (signal) => {
        await local.next(signal);
        if (tries++ === 0) return;
        try {
          await line.admit(key, signal, false);
        } catch (error) {
          local.done(); // the local slot taken for this try leaves the window as if used
          throw error;
        }
      },
    };
  };
}

function share(maxInFlight: number, part: number): number {
  return Math.max(1, Math.floor(maxInFlight * part));
}
