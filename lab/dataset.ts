/**
 * The lab's user set: deterministic from a seed, shared by the enrichment
 * simulator (which serves it) and the validator (which checks documents
 * against it). Some ids have leading zeros and their zero-less twins exist as
 * different users, so a worker that coerces "00123" to 123 gets the wrong
 * profile and the validator notices.
 */
import { createRng, deriveSeed, type Rng } from "./prng.ts";

/** A profile as the enrichment API returns it, without `meta` (seed 000 section 3.2). */
export interface UserProfile {
  user_id: string;
  segment: string;
  country: string;
  city: string;
  age_bucket: string;
  risk_score: number;
  is_premium: boolean;
  interests: string[];
  signup_ts: number;
  features: {
    has_verified_email: boolean;
    has_two_factor: boolean;
    has_payment_method: boolean;
  };
}

export interface DatasetOptions {
  /** number of known users, default 2000 */
  users?: number;
  /** seed of the whole lab, default 1 */
  seed?: number;
}

/** The known users plus a supply of ids that are certainly unknown. */
export interface Dataset {
  /** known ids in a stable order; the first 1% are the "hot" users of the generator */
  readonly knownIds: readonly string[];
  /** the profile of a known id (exact string match), else undefined */
  profile(userId: string): UserProfile | undefined;
  /** the i-th unknown id (digits, never a known id, stable for a given i) */
  unknownId(index: number): string;
}

const SEGMENTS = ["power_user", "casual", "new", "churn_risk", "enterprise", "dormant"] as const;
const PLACES = [
  ["DE", "Berlin"],
  ["DE", "München"],
  ["FR", "Paris"],
  ["US", "New York"],
  ["US", "São Paulo, IL"],
  ["JP", "東京"],
  ["BR", "São Paulo"],
  ["IN", "Bengaluru"],
  ["NG", "Lagos"],
  ["GB", "London"],
] as const;
const AGE_BUCKETS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"] as const;
const INTERESTS = ["ml", "devops", "sports", "music", "travel", "cooking", "finance", "gaming"];

/** Builds the user set; the same options always give the same users and profiles. */
export function buildDataset(options: DatasetOptions = {}): Dataset {
  const users = options.users ?? 2000;
  const seed = options.seed ?? 1;
  if (!Number.isInteger(users) || users < 1) throw new RangeError(`users must be >= 1: ${users}`);
  const rng = createRng(deriveSeed(seed, "dataset"));
  const ids: string[] = [];
  const seen = new Set<string>();
  const add = (id: string) => {
    if (seen.has(id) || ids.length >= users) return;
    seen.add(id);
    ids.push(id);
  };
  while (ids.length < users) {
    // Known ids are at most 7 digits; unknown ids below are 10 digits, so the sets never meet.
    const n = rng.int(1, 9_999_999);
    if (rng.chance(0.1)) {
      // A leading-zero id and, when room is left, its zero-less twin as a different user.
      add(`00${n}`);
      add(String(n));
    } else {
      add(String(n));
    }
  }
  const profiles = new Map<string, UserProfile>();
  for (const id of ids) {
    profiles.set(id, makeProfile(id, createRng(deriveSeed(seed, `user:${id}`))));
  }
  return {
    knownIds: ids,
    profile: (userId) => profiles.get(userId),
    unknownId: (index) => String(9_000_000_000 + ((index * 7919 + seed) % 999_999_999)),
  };
}

function makeProfile(userId: string, rng: Rng): UserProfile {
  const [country, city] = rng.pick(PLACES);
  const interests = INTERESTS.filter(() => rng.chance(0.3));
  return {
    user_id: userId,
    segment: rng.pick(SEGMENTS),
    country,
    city,
    age_bucket: rng.pick(AGE_BUCKETS),
    // Two decimals, like the seed's example; floats must survive a JSON round trip unchanged.
    risk_score: Math.round(rng.next() * 100) / 100,
    is_premium: rng.chance(0.25),
    interests,
    signup_ts: rng.int(1_600_000_000, 1_735_689_600),
    features: {
      has_verified_email: rng.chance(0.8),
      has_two_factor: rng.chance(0.4),
      has_payment_method: rng.chance(0.5),
    },
  };
}
