/**
 * A compact "seen within the last TTL" set of string ids: each id is kept as a
 * 64-bit hash in typed arrays (no string, no Map entry), in insertion order,
 * so memory is a fixed ~17 bytes an entry and expiry is a walk from the oldest.
 *
 * Layout: a ring of entries (hash high 32 bits, low 32 bits, insertion time in
 * 0.1 s: 12 bytes) plus an open-addressing index of ring positions (an
 * Int32Array of a power-of-two size, at most 3/4 full: 4/0.75 ≈ 5.3 bytes an
 * entry). Both start small and double while the window needs more room, up to
 * `maxBytes`; past that the oldest entry is dropped before its TTL and the
 * window the set really holds (`windowMs`) is shorter than the TTL.
 *
 * Collisions: two different ids match only if both 32-bit halves collide. With
 * n ids held, a new id is falsely "seen" with probability about n / 2^64: with
 * 1.6 million held (the default budget) that is 8.5e-14 per lookup, or about
 * one false match per 370 years at 3,000 lookups a second.
 */
import type { Clock } from "./clock.ts";

/** Bytes an entry costs when the index is full to its 3/4 limit. */
export const BYTES_PER_ENTRY = 12 + 4 / 0.75;

/** Options for {@linkcode IdWindow}. */
export interface IdWindowOptions {
  /** How long an id is remembered, ms. */
  ttlMs: number;
  /** Memory the arrays may take at most, bytes. Default 28 MiB (about 1.57 million ids). */
  maxBytes?: number;
  /** Index slots to start with (a power of two). Default 65536. */
  initialSlots?: number;
  /** Time: durations and expiries on its monotonic clock. */
  clock: Pick<Clock, "monotonic">;
}

const EMPTY = -1;
const TICK_MS = 100;

/** Two independent 32-bit hashes of the UTF-16 code units: FNV-1a, and a murmur-style mix. */
export function hash64(id: string): [hi: number, lo: number] {
  let fnv = 0x811c9dc5;
  let mur = 0x9747b28c ^ id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    fnv = Math.imul(fnv ^ c, 0x01000193);
    let k = Math.imul(c, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    mur ^= k;
    mur = Math.imul((mur << 13) | (mur >>> 19), 5) + 0xe6546b64;
  }
  // murmur3's finaliser spreads the last characters over every bit.
  mur ^= mur >>> 16;
  mur = Math.imul(mur, 0x85ebca6b);
  mur ^= mur >>> 13;
  mur = Math.imul(mur, 0xc2b2ae35);
  mur ^= mur >>> 16;
  return [mur >>> 0, fnv >>> 0];
}

/** The largest power-of-two index size whose arrays fit in `maxBytes`. */
export function slotsFor(maxBytes: number): number {
  let slots = 16;
  while (bytesFor(slots * 2) <= maxBytes) slots *= 2;
  return slots;
}

function bytesFor(slots: number): number {
  return slots * 4 + Math.floor(slots * 0.75) * 12;
}

export class IdWindow {
  readonly #ttlTicks: number;
  readonly #maxSlots: number;
  readonly #clock: Pick<Clock, "monotonic">;
  readonly #start: number;
  #index!: Int32Array;
  #hi!: Uint32Array;
  #lo!: Uint32Array;
  #at!: Uint32Array;
  #head = 0;
  #size = 0;
  /** Age (ms) of the last entry dropped before its TTL, and when; -Infinity = never. */
  #shortAgeMs = 0;
  #shortAt = Number.NEGATIVE_INFINITY;

  constructor(options: IdWindowOptions) {
    this.#ttlTicks = Math.ceil(options.ttlMs / TICK_MS);
    this.#maxSlots = slotsFor(options.maxBytes ?? 28 * 2 ** 20);
    this.#clock = options.clock;
    this.#start = this.#clock.monotonic();
    this.#allocate(Math.min(options.initialSlots ?? 65536, this.#maxSlots));
  }

  /** Ids held (some may have expired and not been dropped yet). */
  get size(): number {
    return this.#size;
  }

  /** Most ids the memory budget holds. */
  get maxEntries(): number {
    return Math.floor(this.#maxSlots * 0.75);
  }

  /** Bytes the arrays take now. */
  get bytes(): number {
    return bytesFor(this.#index.length);
  }

  /**
   * The window really held, ms: the TTL, unless within the last TTL an id had
   * to be dropped before its time; then that id's age.
   */
  windowMs(): number {
    const ttlMs = this.#ttlTicks * TICK_MS;
    return this.#clock.monotonic() - this.#shortAt < ttlMs
      ? Math.min(ttlMs, this.#shortAgeMs)
      : ttlMs;
  }

  /** Whether `id` was added within the TTL. */
  has(id: string): boolean {
    if (this.#ttlTicks === 0) return false;
    const [hi, lo] = hash64(id);
    const mask = this.#index.length - 1;
    const now = this.#tick(Math.floor);
    for (let slot = lo & mask;; slot = (slot + 1) & mask) {
      const pos = this.#index[slot]!;
      if (pos === EMPTY) return false;
      if (this.#lo[pos] === lo && this.#hi[pos] === hi && now < this.#at[pos]! + this.#ttlTicks) {
        return true;
      }
    }
  }

  /** Remembers `id` for the TTL. */
  add(id: string): void {
    if (this.#ttlTicks === 0) return;
    const now = this.#tick(Math.floor);
    this.#expire(now);
    const capacity = this.#hi.length;
    if (this.#size === capacity) {
      if (this.#index.length < this.#maxSlots) this.#grow();
      else this.#dropOldestEarly(now);
    }
    const [hi, lo] = hash64(id);
    const pos = (this.#head + this.#size) % this.#hi.length;
    this.#hi[pos] = hi;
    this.#lo[pos] = lo;
    this.#at[pos] = this.#tick(Math.ceil);
    this.#size++;
    const mask = this.#index.length - 1;
    let slot = lo & mask;
    while (this.#index[slot] !== EMPTY) slot = (slot + 1) & mask;
    this.#index[slot] = pos;
  }

  /**
   * Now in ticks since the start: an entry's time is rounded up and "now" down, so an
   * entry never expires early (at most one tick late).
   */
  #tick(round: (x: number) => number): number {
    return round((this.#clock.monotonic() - this.#start) / TICK_MS);
  }

  #expire(now: number): void {
    while (this.#size > 0 && now >= this.#at[this.#head]! + this.#ttlTicks) this.#dropOldest();
  }

  #dropOldestEarly(now: number): void {
    this.#shortAgeMs = (now - this.#at[this.#head]!) * TICK_MS;
    this.#shortAt = this.#clock.monotonic();
    this.#dropOldest();
  }

  /** Removes the ring's head from the index (backward-shift deletion: no tombstones). */
  #dropOldest(): void {
    const pos = this.#head;
    const index = this.#index;
    const mask = index.length - 1;
    let hole = this.#lo[pos]! & mask;
    while (index[hole] !== pos) hole = (hole + 1) & mask;
    for (let next = (hole + 1) & mask; index[next] !== EMPTY; next = (next + 1) & mask) {
      const home = this.#lo[index[next]!]! & mask;
      // Move `next` into the hole unless its home lies cyclically in (hole, next].
      const stays = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (!stays) {
        index[hole] = index[next]!;
        hole = next;
      }
    }
    index[hole] = EMPTY;
    this.#head = (this.#head + 1) % this.#hi.length;
    this.#size--;
  }

  #allocate(slots: number): void {
    this.#index = new Int32Array(slots).fill(EMPTY);
    const capacity = Math.floor(slots * 0.75);
    this.#hi = new Uint32Array(capacity);
    this.#lo = new Uint32Array(capacity);
    this.#at = new Uint32Array(capacity);
  }

  #grow(): void {
    const [hi, lo, at] = [this.#hi, this.#lo, this.#at];
    const [head, size] = [this.#head, this.#size];
    this.#allocate(this.#index.length * 2);
    const mask = this.#index.length - 1;
    for (let i = 0; i < size; i++) {
      const from = (head + i) % hi.length;
      this.#hi[i] = hi[from]!;
      this.#lo[i] = lo[from]!;
      this.#at[i] = at[from]!;
      let slot = this.#lo[i]! & mask;
      while (this.#index[slot] !== EMPTY) slot = (slot + 1) & mask;
      this.#index[slot] = i;
    }
    this.#head = 0;
  }
}
