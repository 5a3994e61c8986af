/**
 * An HTTP/1.x answer's head read from its bytes. Only what frames the body and decides the
 * connection's reuse is decoded here (status, Content-Length, Transfer-Encoding, Connection);
 * the other fields are kept as bytes and decoded when someone asks (lib/http1_answer.ts): most
 * answers are read for their status and body only, and strings for every field were a tenth of
 * what a message allocated (docs/performance.md). Pure.
 */

export interface AnswerHead {
  status: number;
  /** HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `keep-alive`. */
  keepAlive: boolean;
  /** Transfer-Encoding's value, if sent. */
  coding: string | undefined;
  /** Content-Length's values, joined by commas, if sent. */
  length: string | undefined;
  /** The field lines (CRLF between them), undecoded. */
  fields: Uint8Array;
}

const latin1 = new TextDecoder("latin1");
const PREFIX = [72, 84, 84, 80, 47, 49, 46]; // "HTTP/1."
const NAMES = ["content-length", "transfer-encoding", "connection"] as const;

/** The head in `bytes[from, to)` (without its blank line); a TypeError when it is not one. */
export function parseAnswerHead(bytes: Uint8Array, from: number, to: number): AnswerHead {
  const lineEnd = lineEndOf(bytes, from, to);
  const status = statusOf(bytes, from, lineEnd);
  const http11 = bytes[from + 7] === 49;
  const head: AnswerHead = {
    status,
    keepAlive: http11,
    coding: undefined,
    length: undefined,
    fields: bytes.slice(Math.min(lineEnd + 2, to), to),
  };
  for (let at = lineEnd + 2; at < to;) {
    const end = lineEndOf(bytes, at, to);
    const colon = bytes.indexOf(58, at);
    if (colon <= at || colon >= end) throw new TypeError("malformed answer header");
    const name = knownName(bytes, at, colon);
    if (name !== undefined) {
      const value = latin1.decode(bytes.subarray(colon + 1, end)).trim();
      if (name === "content-length") head.length = head.length ? `${head.length},${value}` : value;
      else if (name === "transfer-encoding") head.coding = value;
      else head.keepAlive = http11 ? !/close/i.test(value) : /keep-alive/i.test(value);
    }
    at = end + 2;
  }
  return head;
}

/** The field lines as [lower-cased name, trimmed value] pairs. */
export function decodeFields(fields: Uint8Array): [string, string][] {
  if (fields.length === 0) return [];
  return latin1.decode(fields).split("\r\n").map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
  });
}

function lineEndOf(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 1 < to; i++) if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  return to;
}

/** `HTTP/1.x NNN[ reason]`: the status, or a TypeError. */
function statusOf(bytes: Uint8Array, from: number, end: number): number {
  const ok = end - from >= 12 && PREFIX.every((b, i) => bytes[from + i] === b) &&
    (bytes[from + 7] === 48 || bytes[from + 7] === 49) && bytes[from + 8] === 32 &&
    (end - from === 12 || bytes[from + 12] === 32);
  let status = 0;
  for (let i = from + 9; ok && i < from + 12; i++) {
    const digit = bytes[i]! - 48;
    if (digit < 0 || digit > 9) return notAnswer(bytes, from, end);
    status = status * 10 + digit;
  }
  return ok ? status : notAnswer(bytes, from, end);
}

function notAnswer(bytes: Uint8Array, from: number, end: number): never {
  const line = latin1.decode(bytes.subarray(from, Math.min(end, from + 40)));
  throw new TypeError(`not an HTTP/1.x answer: ${JSON.stringify(line)}`);
}

/** Which of NAMES the bytes spell, in any case; undefined for any other name. */
function knownName(
  bytes: Uint8Array,
  from: number,
  to: number,
): (typeof NAMES)[number] | undefined {
  let end = to;
  while (end > from && (bytes[end - 1] === 32 || bytes[end - 1] === 9)) end--;
  outer: for (const name of NAMES) {
    if (name.length !== end - from) continue;
    for (let i = 0; i < name.length; i++) {
      if ((bytes[from + i]! | 0x20) !== name.charCodeAt(i)) continue outer;
    }
    return name;
  }
  return undefined;
}
