/**
 * A small seeded pseudo-random generator (mulberry32) and the few
 * distributions the lab needs. The lab must be reproducible from `--seed`,
 * so nothing in lab/ uses Math.random.
 */

/** A seeded stream of numbers in [0, 1) plus helpers drawn from it. */
export interface Rng {
  /** next float in [0, 1) */
  next(): number;
  /** integer in [min, max] (both inclusive) */
  int(min: number, max: number): number;
  /** true with probability p */
  chance(p: number): boolean;
  /** one element of a non-empty array */
  pick<T>(items: readonly T[]): T;
  /** lognormal sample with the given median and shape sigma (long right tail) */
  lognormal(median: number, sigma: number): number;
  /** shuffles the array in place (Fisher-Yates) and returns it */
  shuffle<T>(items: T[]): T[];
}

/** mulberry32: 32-bit state, good enough spread for simulations, tiny. */
export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Rng = {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new RangeError("pick() from an empty array");
      return items[Math.floor(next() * items.length)] as T;
    },
    lognormal: (median, sigma) => {
      // Box-Muller; 1 - next() keeps the log argument away from 0.
      const u1 = 1 - next();
      const u2 = next();
      const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      return median * Math.exp(sigma * z);
    },
    shuffle: <T>(items: T[]): T[] => {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        const tmp = items[i] as T;
        items[i] = items[j] as T;
        items[j] = tmp;
      }
      return items;
    },
  };
  return rng;
}

/** Derives an independent seed from a base seed and a label (FNV-1a), so streams do not overlap. */
export function deriveSeed(seed: number, label: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
