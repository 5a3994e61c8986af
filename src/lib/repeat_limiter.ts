/**
 * Rate limits repeated identical log lines: the first one is written, then at
 * most one per interval carrying how many were held back since, so a warning
 * that fires per request cannot flood journald (its default limit is 10,000
 * lines per 30 s) and drown the rest.
 */
import type { Clock } from "./clock.ts";
import type { Logger, LogLevel } from "./logger.ts";

/** What the limiter remembers about one key. */
export interface RepeatState {
  /** When a line for this key was last written, ms. */
  lastWrittenAt: number;
  /** Lines held back since then. */
  held: number;
}

/** The verdict for one occurrence of a key. */
export interface RepeatDecision {
  /** Write this line. */
  write: boolean;
  /** Lines held back before this one (0 unless `write`). */
  repeated: number;
  /** The state to keep for the key. */
  next: RepeatState;
}

/**
 * Whether an occurrence at `now` is written: the first (no state) and the first
 * one at least `intervalMs` after the last written line are; the rest are held
 * back and counted.
 */
export function decideRepeat(
  state: RepeatState | undefined,
  now: number,
  intervalMs: number,
): RepeatDecision {
  if (state === undefined) {
    return { write: true, repeated: 0, next: { lastWrittenAt: now, held: 0 } };
  }
  if (now - state.lastWrittenAt >= intervalMs) {
    return { write: true, repeated: state.held, next: { lastWrittenAt: now, held: 0 } };
  }
  return {
    write: false,
    repeated: 0,
    next: { lastWrittenAt: state.lastWrittenAt, held: state.held + 1 },
  };
}

/** Options for {@linkcode RepeatLimiter}. */
export interface RepeatLimiterOptions {
  /** At most one line per key per this many ms after the first. Default 60000. */
  intervalMs?: number;
  /** Keys remembered; the oldest is forgotten beyond it (its next line is written). Default 1000. */
  maxKeys?: number;
  /** Time: durations and expiries on its monotonic clock. */
  clock: Pick<Clock, "monotonic">;
}

/** Remembers keys and applies {@linkcode decideRepeat} to each occurrence. */
export class RepeatLimiter {
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #clock: Pick<Clock, "monotonic">;
  readonly #states = new Map<string, RepeatState>();

  constructor(options: RepeatLimiterOptions) {
    this.#intervalMs = options.intervalMs ?? 60_000;
    this.#maxKeys = options.maxKeys ?? 1000;
    this.#clock = options.clock;
  }

  /** Records one occurrence of `key`; says whether to write it and how many were held back. */
  admit(key: string): { write: boolean; repeated: number } {
    const decision = decideRepeat(this.#states.get(key), this.#clock.monotonic(), this.#intervalMs);
    if (!this.#states.has(key) && this.#states.size >= this.#maxKeys) {
      // Map order is insertion order: forget the oldest key.
      this.#states.delete(this.#states.keys().next().value!);
    }
    this.#states.set(key, decision.next);
    return { write: decision.write, repeated: decision.repeated };
  }
}

/**
 * Fields that differ between repeats of the same event (attempt counters,
 * delays) and so are left out of the key that says two lines are identical.
 */
export const VOLATILE_FIELDS: ReadonlySet<string> = new Set([
  "failures",
  "attempt",
  "delay_ms",
  "retry_in_ms",
  "duration_ms",
  "in_flight",
  "remaining_ms",
]);

/** The identity of a line: level, message and the non-volatile fields (errors by their text). */
export function repeatKey(level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const parts: string[] = [level, msg];
  for (const [name, value] of Object.entries(fields)) {
    if (VOLATILE_FIELDS.has(name)) continue;
    const text = value instanceof Error ? `${value.name}: ${value.message}` : safeJson(value);
    parts.push(`${name}=${text}`);
  }
  return parts.join("\u0000");
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * A logger whose `warn` and `error` lines pass through a {@linkcode RepeatLimiter}:
 * a line written after held-back repeats carries `repeated: N`. `debug` and
 * `info` pass unchanged. Children share the limiter.
 */
export function limitRepeats(logger: Logger, limiter: RepeatLimiter): Logger {
  const limited =
    (level: "warn" | "error", base: Logger) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      const { write, repeated } = limiter.admit(repeatKey(level, msg, fields));
      if (!write) return;
      base[level](msg, repeated > 0 ? { ...fields, repeated } : fields);
    };
  const wrap = (base: Logger): Logger => ({
    debug: (msg, fields) => base.debug(msg, fields),
    info: (msg, fields) => base.info(msg, fields),
    warn: limited("warn", base),
    error: limited("error", base),
    child: (fields) => wrap(base.child(fields)),
    enabled: (level) => base.enabled(level),
  });
  return wrap(logger);
}
