/**
 * The input message (docs/messages.md). Anything that does not parse is
 * poison, with a reason short enough for the DLQ's `sluice_reason` attribute.
 */

/** A message that passed validation, normalised. */
export interface InputMessage {
  message_id: string;
  /** Always a string: integers become their decimal form, strings stay verbatim. */
  user_id: string;
  /** Epoch seconds: numbers unchanged, ISO strings floored. */
  event_ts: number;
  payload: Record<string, unknown>;
}

export type ParseResult =
  | { ok: true; message: InputMessage }
  | { ok: false; reason: string };

/**
 * Deeper bodies are refused up front: `JSON.stringify` recurses and would throw
 * on the way out, long after the message was accepted for work.
 */
export const MAX_DEPTH = 512;

/** The decimal value of `count` ASCII digits at `at`, or -1 when one is not a digit. */
function digitsAt(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const d = text.charCodeAt(i) - 48;
    if (!(d >= 0 && d <= 9)) return -1;
    value = value * 10 + d;
  }
  return value;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (month 1-12), without a Date object. */
function epochDays(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) +
    dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

/**
 * Epoch seconds of an ISO-8601 date-time that names its zone (`Z` or an offset), floored;
 * undefined if invalid. `YYYY-MM-DDTHH:MM[:SS[.fraction]]` then `Z`, `±HH:MM` or `±HHMM`.
 * Zone-less strings are ambiguous (local time of whom?), so they are poison, as are numeric
 * strings and impossible dates (Feb 30). Read by hand: it runs once per message.
 */
export function parseIsoSeconds(value: string): number | undefined {
  const n = value.length;
  if (n < 17 || value[4] !== "-" || value[7] !== "-" || value[13] !== ":") return undefined;
  const t = value.charCodeAt(10);
  if (t !== 84 && t !== 116) return undefined; // T or t
  const year = digitsAt(value, 0, 4), month = digitsAt(value, 5, 2), day = digitsAt(value, 8, 2);
  const hour = digitsAt(value, 11, 2), minute = digitsAt(value, 14, 2);
  let i = 16;
  let second = 0;
  if (value[i] === ":") {
    second = digitsAt(value, i + 1, 2);
    i += 3;
    if (value[i] === ".") {
      // The fraction never changes the floored second: whole seconds plus [0, 1).
      const start = ++i;
      while (i < n && digitsAt(value, i, 1) >= 0) i++;
      if (i === start) return undefined;
    }
  }
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return undefined;
  }
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
    return undefined;
  }
  const offset = zoneOffsetSeconds(value, i);
  if (offset === undefined) return undefined;
  return epochDays(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
}

/** The zone at `at` to the end: `Z`/`z` is 0, `±HH:MM` or `±HHMM` its seconds east of UTC. */
function zoneOffsetSeconds(value: string, at: number): number | undefined {
  const rest = value.length - at;
  const sign = value[at];
  if (rest === 1) return sign === "Z" || sign === "z" ? 0 : undefined;
  if ((sign !== "+" && sign !== "-") || (rest !== 5 && rest !== 6)) return undefined;
  if (rest === 6 && value[at + 3] !== ":") return undefined;
  const hours = digitsAt(value, at + 1, 2), minutes = digitsAt(value, at + rest - 2, 2);
  if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59) return undefined;
  return (sign === "-" ? -1 : 1) * (hours * 3600 + minutes * 60);
}

/** Ids longer than this many bytes of UTF-8 are poison (docs/messages.md). */
export const MAX_ID_BYTES = 256;

/** Whether a string has no lone UTF-16 surrogate (String.prototype.isWellFormed, spelled out). */
export function isWellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false;
    i++;
  }
  return true;
}

/** UTF-8 length of a well-formed string, counted without encoding it. */
function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** Why an id is poison (too long, not well-formed), or undefined when it may be used. */
export function idProblem(field: string, value: string): string | undefined {
  // Every UTF-16 unit takes at least one byte: the length alone settles long ids.
  if (value.length > MAX_ID_BYTES || utf8Bytes(value) > MAX_ID_BYTES) {
    return `${field} is longer than ${MAX_ID_BYTES} bytes of UTF-8`;
  }
  if (!isWellFormed(value)) return `${field} is not well-formed Unicode (a lone surrogate)`;
  return undefined;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Proleptic Gregorian, as Date.parse counts (no Date object per message). */
function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1] ?? 31;
}

/**
 * One field's rule: the reason its value is poison, or undefined when it is fine. The rules are
 * plain functions (not zod) because they run once per message on the hot path; a new rule for a
 * field (a length cap, a character set) is one more `if` in its function.
 */
type FieldRule = (value: unknown, field: string) => string | undefined;

function wrongType(field: string, value: unknown): string {
  return `${field} has the wrong type (${describe(value)})`;
}

const messageIdRule: FieldRule = (value, field) => {
  if (typeof value !== "string") return wrongType(field, value);
  if (value === "") return `${field} is an empty string`;
  return undefined;
};

const userIdRule: FieldRule = (value, field) => {
  if (typeof value === "string") return value === "" ? `${field} is an empty string` : undefined;
  // 1e999 parses to Infinity: not a number a producer meant, so the wrong type, as for zod
  if (typeof value !== "number" || !Number.isFinite(value)) return wrongType(field, value);
  if (!Number.isInteger(value)) return `${field} is not an integer`;
  if (value < 0) return `${field} is negative`;
  if (!Number.isSafeInteger(value)) return `${field} is beyond the safe integer range`;
  return undefined;
};

const eventTsRule: FieldRule = (value, field) => {
  if (typeof value === "string") return undefined; // the ISO check comes after the shape
  return typeof value === "number" && Number.isFinite(value) ? undefined : wrongType(field, value);
};

const payloadRule: FieldRule = (value, field) =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? undefined
    : wrongType(field, value);

/** The input fields in the order their reasons are reported (the first failing one wins). */
const FIELD_RULES: ReadonlyArray<readonly [string, FieldRule]> = [
  ["message_id", messageIdRule],
  ["user_id", userIdRule],
  ["event_ts", eventTsRule],
  ["payload", payloadRule],
];

/** The first field's reason, or undefined when every field passes its rule. */
function shapeProblem(data: Record<string, unknown>): string | undefined {
  for (const [field, rule] of FIELD_RULES) {
    const value = data[field];
    if (value === undefined) return `${field} is missing`;
    const problem = rule(value, field);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** Nesting depth of a JSON text, counted without parsing (strings skipped). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) max = depth;
    } else if (c === 125 || c === 93) depth--;
  }
  return max;
}

/** Whether `text` has more than `limit` of `{` and `[` together (in strings too). */
function openingsExceed(text: string, limit: number): boolean {
  let count = 0;
  for (const bracket of ["{", "["]) {
    for (let i = text.indexOf(bracket); i !== -1; i = text.indexOf(bracket, i + 1)) {
      if (++count > limit) return true;
    }
  }
  return false;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** Parses and validates one SQS body. Never throws. */
export function parseMessage(body: string): ParseResult {
  // Deeper than MAX_DEPTH takes more than MAX_DEPTH opening brackets: a body with fewer (a
  // native search tells) needs no count.
  if (
    body.length > MAX_DEPTH && openingsExceed(body, MAX_DEPTH) && jsonDepth(body) > MAX_DEPTH
  ) {
    return { ok: false, reason: `body is nested deeper than ${MAX_DEPTH} levels` };
  }
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (error) {
    return { ok: false, reason: `invalid JSON: ${(error as Error).message}`.slice(0, 200) };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { ok: false, reason: `body is ${describe(data)}, expected a JSON object` };
  }
  const fields = data as Record<string, unknown>;
  const problem = shapeProblem(fields);
  if (problem !== undefined) return { ok: false, reason: problem };
  const message_id = fields.message_id as string;
  const user_id = fields.user_id as string | number;
  const event_ts = fields.event_ts as string | number;
  // Capped and well-formed, so a queue writer cannot grow the caches or trip a breaker.
  const idIssue = idProblem("message_id", message_id) ??
    (typeof user_id === "string" ? idProblem("user_id", user_id) : undefined);
  if (idIssue) return { ok: false, reason: idIssue };
  let seconds: number;
  if (typeof event_ts === "number") seconds = event_ts;
  else {
    const parsed = parseIsoSeconds(event_ts);
    if (parsed === undefined) {
      return {
        ok: false,
        reason: "event_ts is a string but not an ISO-8601 date-time with Z or an offset",
      };
    }
    seconds = parsed;
  }
  // The payload object passes through as JSON.parse built it: own keys only, so a
  // `__proto__` key is plain data and re-serialises unchanged.
  const raw = (data as { payload: Record<string, unknown> }).payload;
  return {
    ok: true,
    message: {
      message_id,
      user_id: typeof user_id === "number" ? String(user_id) : user_id,
      event_ts: seconds,
      payload: raw,
    },
  };
}
