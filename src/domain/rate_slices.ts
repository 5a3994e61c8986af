/**
 * The fleet's window under RATE_LIMIT_TABLE (docs/rate-limits.md): the window cut into slices of
 * wall-clock time, one shared count per slice, and a submission at `t` allowed while the current
 * slice and the SLICES + 1 before it hold fewer than N. The check is conservative twice over: any
 * window of DURATION ending in the current slice lies inside the current slice and the SLICES
 * before it, and one slice more covers a submission that reaches the validator up to a slice
 * later than it took its slot (a slot counts when it is taken). The price is up to two slices of
 * waiting per window. Pure.
 */
import type { RateLimit } from "./rate_limit.ts";

/** Slices per window: the fleet's limit is exact to a tenth of the window. */
export const SLICES = 10;
/** Slices counted beyond the window: the latency a submission may have and still count right. */
const LATENCY_SLICES = 1;

/** Shared counts of one key: slice index → submissions the fleet made in it. */
export type SliceCounts = ReadonlyMap<number, number>;

/** What one take of a slot needs to know and to write. */
export interface SlicePlan {
  /** The current slice's index. */
  slice: number;
  /** N less the earlier live slices' counts: the current slice may grow while below it. */
  room: number;
  /** The current slice's known count is below `room` already. */
  free: boolean;
  /** The earlier live slices (SLICES + 1 before the current), with the counts the take assumes. */
  live: Array<[slice: number, count: number]>;
  /** Slices before the live ones that `counts` still holds: the next write removes them. */
  expired: number[];
}

/** Slices per window and a slice's length in ms: a window shorter than SLICES ms has 1 ms slices. */
export function sliceShape(rate: RateLimit): { slices: number; sliceMs: number } {
  const slices = Math.max(1, Math.min(SLICES, Math.floor(rate.windowMs)));
  return { slices, sliceMs: rate.windowMs / slices };
}

/** The plan for a slot taken at wall-clock `nowMs`, given the counts known of the key. */
export function slicePlan(rate: RateLimit, nowMs: number, counts: SliceCounts): SlicePlan {
  const { slices, sliceMs } = sliceShape(rate);
  const slice = Math.floor(nowMs / sliceMs);
  const first = slice - slices - LATENCY_SLICES;
  const live: Array<[number, number]> = [];
  let used = 0;
  for (let index = first; index < slice; index++) {
    const count = counts.get(index) ?? 0;
    live.push([index, count]);
    used += count;
  }
  const expired: number[] = [];
  for (const index of counts.keys()) if (index < first) expired.push(index);
  const room = rate.limit - used;
  return { slice, room, free: (counts.get(slice) ?? 0) < room, live, expired };
}

/**
 * The earliest wall-clock time (ms, never before `nowMs`) at which a slice has room by the
 * counts known: the start of the first later slice whose SLICES + 1 predecessors hold fewer than N.
 * Other workers may take that room first; the taker then asks again.
 */
export function nextSliceSlot(rate: RateLimit, nowMs: number, counts: SliceCounts): number {
  const { slices, sliceMs } = sliceShape(rate);
  const slice = Math.floor(nowMs / sliceMs);
  if (slicePlan(rate, nowMs, counts).free) return nowMs;
  const span = slices + LATENCY_SLICES;
  for (let next = slice + 1; next <= slice + span; next++) {
    let used = 0;
    for (let index = next - span; index <= slice; index++) used += counts.get(index) ?? 0;
    if (used < rate.limit) return Math.max(nowMs, sliceStart(rate, next));
  }
  return Math.max(nowMs, sliceStart(rate, slice + span + 1));
}

/** Slice `index`'s first whole millisecond. */
export function sliceStart(rate: RateLimit, index: number): number {
  return Math.ceil(index * sliceShape(rate).sliceMs);
}
