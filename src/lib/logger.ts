/**
 * A structured logger: one JSON object per line (for journald) or a short
 * human format for terminals. Never throws. Both forms pass through
 * escapeTerminal, so no field can drive a terminal or a log viewer.
 */
import type { Clock } from "./clock.ts";
import { escapeTerminal } from "./terminal_text.ts";

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. Default "info". */
  level?: LogLevel;
  /**
   * "json": one object per line; "pretty": `HH:MM:SS.mmm LEVEL msg key=value` (UTC), with long
   * values cut. Either way control, C1 and bidirectional characters are escaped (also inside
   * arrays and objects), so a hostile id cannot drive a terminal. Default "json".
   */
  format?: "json" | "pretty";
  /** Receives each line, without a trailing newline. Default `console.log`. */
  write?: (line: string) => void;
  /** The time each line carries (its wall clock). */
  clock: Pick<Clock, "now">;
}

/** Writes leveled messages with structured fields. */
export interface Logger {
  /** Logs at debug level. */
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at info level. */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at warn level. */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** Logs at error level. */
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line (a call's own fields win over them). */
  child(fields: Record<string, unknown>): Logger;
  /** Whether a line at `level` is written: skip building fields that would be dropped. */
  enabled(level: LogLevel): boolean;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Creates a logger. In JSON lines `ts`, `level` and `msg` come first and
 * cannot be overridden by fields; Error values render as `{name, message}`.
 */
export function createLogger(options: LoggerOptions): Logger {
  const minRank = RANK[options.level ?? "info"];
  const format = options.format ?? "json";
  const write = options.write ?? ((line: string) => console.log(line));
  const clock = options.clock;

  const emit = (level: LogLevel, msg: string, fields: Record<string, unknown>) => {
    if (RANK[level] < minRank) return;
    const time = new Date(clock.now());
    write(
      format === "json" ? jsonLine(time, level, msg, fields) : prettyLine(time, level, msg, fields),
    );
  };

  const make = (base: Record<string, unknown>): Logger => {
    const at = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
      // Below the level nothing is built (a line per message at info costs a merged object each).
      if (RANK[level] < minRank) return;
      emit(level, msg, fields === undefined ? base : { ...base, ...fields });
    };
    return {
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
      child: (fields) => make({ ...base, ...fields }),
      enabled: (level) => RANK[level] >= minRank,
    };
  };
  return make({});
}

/** JSON.stringify replacer: Errors as {name, message}, bigints as strings. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (typeof value === "bigint") return value.toString();
  return value;
}

function jsonLine(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown>) {
  const record: Record<string, unknown> = { ts: time.toISOString(), level, msg };
  for (const [key, value] of Object.entries(fields)) {
    if (!(key in record)) record[key] = value;
  }
  try {
    // JSON.stringify leaves C1 and bidirectional controls raw; their \u escapes are valid JSON.
    return escapeTerminal(JSON.stringify(record, replacer));
  } catch {
    // A circular field must not turn a log call into a crash.
    const fallback = { ts: record.ts, level, msg, log_error: "fields not serializable" };
    return escapeTerminal(JSON.stringify(fallback));
  }
}

/** Ids (keys ending in `id`) are cut shorter than other text in pretty lines. */
const PRETTY_ID_CHARS = 80;
const PRETTY_TEXT_CHARS = 500;

/** Anything that needs quoting: whitespace, quote, `=`, or a character to escape. */
const NEEDS_QUOTES =
  // deno-lint-ignore no-control-regex -- control characters are exactly what it looks for
  /[\s"=\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/;

/** `text` cut to `max` code points, with an ellipsis and the full length when cut. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max).join("")}…(${chars.length} chars)`;
}

/** `text` as a JSON string literal, with what a terminal must not see escaped as well. */
function escaped(text: string): string {
  return escapeTerminal(JSON.stringify(text));
}

/** Quoted and escaped when needed, so every value stays on one line, inert. */
function prettyText(text: string): string {
  return text !== "" && !NEEDS_QUOTES.test(text) ? text : escaped(text);
}

/** The message and keys are not quoted, only escaped (they are ours, but cheap to guard). */
function bare(text: string): string {
  return NEEDS_QUOTES.test(text.replace(/[ ]/g, "")) ? escaped(text).slice(1, -1) : text;
}

function prettyValue(value: unknown, key = ""): string {
  let text: string;
  if (value instanceof Error) text = `${value.name}: ${value.message}`;
  else if (typeof value === "string") text = value;
  else if (value === undefined || typeof value === "function" || typeof value === "symbol") {
    return escapeTerminal(String(value));
  } else {
    // Numbers, booleans, null and objects as compact JSON, which needs no quoting; escaped
    // still, since JSON.stringify leaves C1 and bidirectional controls raw inside strings.
    try {
      return escapeTerminal(JSON.stringify(value, replacer) ?? String(value));
    } catch {
      return "[unserializable]";
    }
  }
  // Quote text only when needed so that key=value pairs stay unambiguous.
  return prettyText(cut(text, /id$/i.test(key) ? PRETTY_ID_CHARS : PRETTY_TEXT_CHARS));
}

function prettyLine(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown>) {
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const clock = `${pad(time.getUTCHours())}:${pad(time.getUTCMinutes())}:${
    pad(time.getUTCSeconds())
  }.${pad(time.getUTCMilliseconds(), 3)}`;
  const pairs = Object.entries(fields).map(([key, value]) =>
    ` ${bare(key)}=${prettyValue(value, key)}`
  );
  return `${clock} ${level.toUpperCase()} ${bare(msg)}${pairs.join("")}`;
}
