/**
 * The message mix every bench run uses (the one bench/RESULTS.md describes): 2 % poison, 1 %
 * producer duplicates, 1 % unknown users, 20 % of messages on the hottest 1 % of users, over
 * 2,000 users with seed 1.
 */
export const BENCH_MIX = {
  poisonShare: 0.02,
  duplicateShare: 0.01,
  unknownShare: 0.01,
  hotShare: 0.2,
} as const;

export const BENCH_WORKLOAD = { users: 2000, seed: 1, ...BENCH_MIX } as const;
