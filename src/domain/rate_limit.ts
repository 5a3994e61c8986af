/**
 * Per-key rate limits (docs/rate-limits.md): `RATE_LIMIT=N/DURATION` and `RATE_LIMIT_KEY`
 * parsed into settings, and the next free slot of an exact sliding window. Pure.
 */

/** At most `limit` submissions per key in any window of `windowMs`. */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** What a message is limited by: its user, its SQS MessageGroupId, or a message attribute. */
export type RateKeySpec =
  | { kind: "user_id" }
  | { kind: "message_group" }
  | { kind: "attribute"; name: string };

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Largest N: a key's window keeps one timestamp per submission. */
export const RATE_LIMIT_MAX = 100_000;
/** Longest DURATION: SQS keeps a message out of sight for at most 12 h. */
const WINDOW_MAX_MS = 43_200_000;

/** `20/1s`, `600/1m`, `1000/1h`, `5/250ms` → a RateLimit; undefined when malformed. */
export function parseRateLimit(text: string): RateLimit | undefined {
  const match = /^\s*(\d+)\s*\/\s*(\d+)?\s*(ms|s|m|h)\s*$/.exec(text);
  if (!match) return undefined;
  const limit = Number(match[1]);
  const windowMs = Number(match[2] ?? "1") * UNIT_MS[match[3]!]!;
  if (limit < 1 || limit > RATE_LIMIT_MAX || windowMs < 1 || windowMs > WINDOW_MAX_MS) {
    return undefined;
  }
  return { limit, windowMs };
}

/** `user_id`, `message_group` or `attribute:NAME` (an SQS attribute name) → a RateKeySpec. */
export function parseRateKey(text: string): RateKeySpec | undefined {
  const value = text.trim();
  if (value === "user_id" || value === "message_group") return { kind: value };
  const match = /^attribute:([A-Za-z0-9_.-]{1,256})$/.exec(value);
  return match ? { kind: "attribute", name: match[1]! } : undefined;
}

/**
 * The earliest time (ms) a new submission may go out: `now` when the key's past
 * submissions still in the window, the ones admitted but not answered yet (`pending`,
 * counted as leaving now) and the slots already promised number fewer than `limit`;
 * otherwise one window after the one `limit` places back. `past` and `promised` are
 * ascending; `past` may hold times older than the window.
 */
export function nextSlot(
  rate: RateLimit,
  now: number,
  past: readonly number[],
  promised: readonly { at: number }[],
  pending = 0,
): number {
  // Binary search: the first past time still inside the window (now - windowMs, now].
  let first = 0;
  for (let high = past.length; first < high;) {
    const middle = (first + high) >>> 1;
    if (past[middle]! > now - rate.windowMs) high = middle;
    else first = middle + 1;
  }
  const live = past.length - first;
  const index = live + pending + promised.length - rate.limit;
  if (index < 0) return now;
  const time = index < live
    ? past[first + index]!
    : index < live + pending
    ? now
    : promised[index - live - pending]!.at;
  return Math.max(now, time + rate.windowMs);
}
