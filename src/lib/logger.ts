/**
 * A structured logger: one JSON object per line (for journald) or a short
 * human format for terminals. Never throws.
 */

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. Default "info". */
  level?: LogLevel;
  /** "json": one object per line; "pretty": `HH:MM:SS.mmm LEVEL msg key=value` (UTC). Default "json". */
  format?: "json" | "pretty";
  /** Receives each line, without a trailing newline. Default `console.log`. */
  write?: (line: string) => void;
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
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
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Creates a logger. In JSON lines `ts`, `level` and `msg` come first and
 * cannot be overridden by fields; Error values render as `{name, message}`.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const minRank = RANK[options.level ?? "info"];
  const format = options.format ?? "json";
  const write = options.write ?? ((line: string) => console.log(line));
  const now = options.now ?? Date.now;

  const emit = (level: LogLevel, msg: string, fields: Record<string, unknown>) => {
    if (RANK[level] < minRank) return;
    const time = new Date(now());
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
    return JSON.stringify(record, replacer);
  } catch {
    // A circular field must not turn a log call into a crash.
    return JSON.stringify({ ts: record.ts, level, msg, log_error: "fields not serializable" });
  }
}

function prettyValue(value: unknown): string {
  let text: string;
  if (value instanceof Error) text = `${value.name}: ${value.message}`;
  else if (typeof value === "string") text = value;
  else if (value === undefined || typeof value === "function" || typeof value === "symbol") {
    return String(value);
  } else {
    // Numbers, booleans, null and objects as compact JSON, which needs no quoting.
    try {
      return JSON.stringify(value, replacer) ?? String(value);
    } catch {
      return "[unserializable]";
    }
  }
  // Quote text only when needed so that key=value pairs stay unambiguous.
  return text === "" || /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}

function prettyLine(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown>) {
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const clock = `${pad(time.getUTCHours())}:${pad(time.getUTCMinutes())}:${
    pad(time.getUTCSeconds())
  }.${pad(time.getUTCMilliseconds(), 3)}`;
  const pairs = Object.entries(fields).map(([key, value]) => ` ${key}=${prettyValue(value)}`);
  return `${clock} ${level.toUpperCase()} ${msg}${pairs.join("")}`;
}
