/**
 * A size-bounded LRU cache whose entries expire after a time to live, and may
 * still be served as stale for a while after that (stale-if-error).
 */
import type { Clock } from "./clock.ts";

/** Options for {@linkcode TtlCache}. */
export interface TtlCacheOptions {
  /** Default time to live for `set()`, in ms. */
  ttlMs: number;
  /** Max entries; the least recently used one is evicted beyond it. Default 100000. */
  maxSize?: number;
  /** How long past expiry an entry may still be served by `peek()`, in ms. Default 0. */
  staleMs?: number;
  /** Time: durations and expiries on its monotonic clock. */
  clock: Pick<Clock, "monotonic">;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
  /** When it was last (re)inserted, counted in insertions. */
  order: number;
}

/** A TTL + LRU cache. Expiry is lazy: old entries are removed when touched or evicted. */
export class TtlCache<K, V> {
  readonly #ttlMs: number;
  readonly #maxSize: number;
  readonly #staleMs: number;
  readonly #clock: Pick<Clock, "monotonic">;
  // Map iteration order is insertion order, so re-inserting on a hit keeps it LRU-ordered.
  readonly #entries = new Map<K, Entry<V>>();
  /** Insertions so far (sets and moves): an entry's distance from the newest end. */
  #inserted = 0;

  /** Creates an empty cache; throws a RangeError if `maxSize` is below 1. */
  constructor(options: TtlCacheOptions) {
    this.#ttlMs = options.ttlMs;
    this.#maxSize = options.maxSize ?? 100_000;
    this.#staleMs = options.staleMs ?? 0;
    this.#clock = options.clock;
    if (!(this.#maxSize >= 1)) {
      throw new RangeError(
        `Cannot use TtlCache maxSize: received ${this.#maxSize}, expected a number >= 1`,
      );
    }
  }

  /** Entries held, including expired ones not removed yet. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The fresh value, or undefined. Entries older than ttl + staleMs are deleted on access.
   * A hit makes the entry the most recently used, unless fewer than maxSize / 2 entries were
   * inserted after it: one in the newer half cannot be evicted before maxSize / 2 more
   * insertions, and a later hit moves it then. So hits on a hot set cost one lookup instead
   * of a Map delete and insert each (get() runs once per message), and an entry hit is kept
   * for at least maxSize / 2 insertions after the hit (exact LRU: maxSize - 1).
   */
  get(key: K): V | undefined {
    const now = this.#clock.monotonic();
    const entry = this.#live(key, now);
    if (entry === undefined || now >= entry.expiresAt) return undefined;
    if (this.#inserted - entry.order >= this.#maxSize / 2) {
      this.#entries.delete(key);
      entry.order = ++this.#inserted;
      this.#entries.set(key, entry);
    }
    return entry.value;
  }

  /**
   * The value even if expired but still within `staleMs`, with whether it is
   * fresh; undefined otherwise. Does not change the LRU order.
   */
  peek(key: K): { value: V; fresh: boolean } | undefined {
    const now = this.#clock.monotonic();
    const entry = this.#live(key, now);
    if (entry === undefined) return undefined;
    return { value: entry.value, fresh: now < entry.expiresAt };
  }

  /** Stores `value` for `ttlMs` (default: the cache's `ttlMs`), evicting the LRU entry if full. */
  set(key: K, value: V, ttlMs: number = this.#ttlMs): void {
    this.#entries.delete(key);
    this.#entries.set(key, {
      value,
      expiresAt: this.#clock.monotonic() + ttlMs,
      order: ++this.#inserted,
    });
    if (this.#entries.size > this.#maxSize) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }

  /** Whether a fresh value is cached. Does not change the LRU order. */
  has(key: K): boolean {
    const now = this.#clock.monotonic();
    const entry = this.#live(key, now);
    return entry !== undefined && now < entry.expiresAt;
  }

  /** Removes an entry; true if there was one. */
  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  /** Removes every entry. */
  clear(): void {
    this.#entries.clear();
  }

  /** The entry if it is fresh or still within the stale window; deletes it otherwise. */
  #live(key: K, now: number): Entry<V> | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (now >= entry.expiresAt + this.#staleMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }
}
