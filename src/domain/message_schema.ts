/**
 * The input message (contract section 2). Anything that does not parse is
 * poison, with a reason short enough for the DLQ's `sluice_reason` attribute.
 */
import { z } from "zod";

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

// ISO-8601 date-time that names its zone: `Z` or an offset. Zone-less strings are
// ambiguous (local time of whom?), so they are poison, as are numeric strings.
const ISO_WITH_ZONE =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$/;

/** Epoch seconds of an ISO-8601 string with a zone, floored; undefined if invalid. */
export function parseIsoSeconds(value: string): number | undefined {
  const match = ISO_WITH_ZONE.exec(value);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s = "00", frac = "", zone = "Z"] = match;
  const offset = zone === "Z" || zone === "z" ? "Z" : `${zone.slice(0, 3)}:${zone.slice(-2)}`;
  // Date.parse accepts impossible dates like Feb 30 by rolling over; check fields back.
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${frac.slice(0, 4)}${offset}`);
  if (!Number.isFinite(ms)) return undefined;
  if (Number(mo) > 12 || Number(d) > daysInMonth(Number(y), Number(mo))) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  return Math.floor(ms / 1000);
}

/** Ids longer than this many bytes of UTF-8 are poison (contract section 2). */
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

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

const userId = z.union([
  z.string().min(1, "user_id is an empty string"),
  z.number()
    .refine(Number.isInteger, "user_id is not an integer")
    .refine((n) => n >= 0, "user_id is negative")
    .refine(Number.isSafeInteger, "user_id is beyond the safe integer range"),
]);

const eventTs = z.union([
  z.number().refine(Number.isFinite, "event_ts is not finite"),
  z.string(),
]);

const messageShape = z.object({
  message_id: z.string().min(1, "message_id is an empty string"),
  user_id: userId,
  event_ts: eventTs,
  payload: z.record(z.string(), z.unknown()),
});

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

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** Parses and validates one SQS body. Never throws. */
export function parseMessage(body: string): ParseResult {
  if (jsonDepth(body) > MAX_DEPTH) {
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
  const result = messageShape.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0];
    const field = issue?.path.join(".") || "body";
    const got = (data as Record<string, unknown>)[String(issue?.path[0] ?? "")];
    const reason = issue?.code === "invalid_type" || issue?.code === "invalid_union"
      ? (got === undefined
        ? `${field} is missing`
        : `${field} has the wrong type (${describe(got)})`)
      : issue?.message ?? "invalid message";
    return { ok: false, reason };
  }
  const { message_id, user_id, event_ts } = result.data;
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
