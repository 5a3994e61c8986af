/**
 * Where a message's user profile comes from: the profile cache first, then the
 * enrichment API through a micro-batcher, one lookup per user id at a time
 * (single-flight), behind the enrichment breaker and concurrency limit. When
 * the API fails or its breaker is open, a cached profile past its TTL is served
 * as `stale` (bounded by the cache's stale window).
 */
import { Batcher } from "../lib/batcher.ts";
import { CircuitOpenError, HttpError, isRetriable } from "../lib/errors.ts";
import type { BatchLookup } from "../adapters/enrich_client.ts";
import type { Enrichment, Profile } from "../domain/output_document.ts";
import { TtlCache } from "../lib/ttl_cache.ts";
import type { Clock } from "../lib/clock.ts";
import { SPAN_KIND, type Traced, type Tracer } from "../lib/tracer.ts";

export interface ProfileSourceOptions {
  client: {
    getUser(userId: string, signal?: AbortSignal, trace?: Traced): Promise<Profile | null>;
    getUsers(ids: readonly string[], signal?: AbortSignal, trace?: Traced): Promise<BatchLookup>;
  };
  /** Runs a request under the enrichment circuit breaker; throws CircuitOpenError. */
  breaker: {
    run<T>(fn: () => Promise<T>, isFailure?: (err: unknown) => boolean): Promise<T>;
    canPass(): boolean;
  };
  /** Runs a request under the enrichment concurrency limit. */
  limiter: { run<T>(fn: () => Promise<T>): Promise<T> };
  /** Profile TTL, ms (CACHE_TTL_SECONDS). 0 turns the cache off. */
  cacheTtlMs: number;
  /** CACHE_MAX_ENTRIES. */
  cacheMaxEntries: number;
  /** How long past its TTL a profile may still be served as stale, ms. Default 3600000. */
  maxStaleMs?: number;
  /** How long "unknown user" is remembered, ms. Default min(60000, cacheTtlMs). */
  negativeTtlMs?: number;
  /** ENRICH_BATCH_MAX; 1 turns batching off. */
  batchMax: number;
  /** ENRICH_BATCH_WAIT_MS. */
  batchWaitMs: number;
  /**
   * Batches sent at once (ENRICH_CONCURRENCY): while they are all out, new ids
   * gather into fuller batches instead of queueing as many small ones. Default Infinity.
   */
  maxConcurrentBatches?: number;
  /** Cache result per lookup: hit, miss or stale. */
  onCache?: (result: "hit" | "miss" | "stale") => void;
  /** Ids per batch request. */
  onBatch?: (size: number) => void;
  /** Cache expiries and the batch timer. */
  clock: Clock;
  /** A batch request's own trace, linked to the messages it serves; unset: no trace context. */
  tracer?: Tracer | undefined;
}

const UNKNOWN: Enrichment = { status: "unknown_user" };

/** An id the batch answer listed under `errors` (or left out): ask again. */
function retryLater(id: string, code: string): HttpError {
  return new HttpError("enrichment", 200, `batch lookup for ${id} failed: ${code}`, {
    category: "TRANSIENT",
  });
}

export class ProfileSource {
  readonly #options: ProfileSourceOptions;
  readonly #profiles: TtlCache<string, Profile>;
  readonly #unknown: TtlCache<string, true>;
  readonly #inFlight = new Map<string, Promise<Profile | null>>();
  readonly #batcher: Batcher<string, Profile | null>;
  /** The traces of the messages waiting for each id in flight: a request's parent or links. */
  readonly #askers = new Map<string, Traced[]>();
  /** Set when the API has no batch endpoint (404/405): single lookups from then on. */
  #singleOnly: boolean;

  constructor(options: ProfileSourceOptions) {
    this.#options = options;
    const clock = options.clock;
    this.#profiles = new TtlCache({
      ttlMs: options.cacheTtlMs,
      maxSize: Math.max(1, options.cacheMaxEntries),
      staleMs: options.maxStaleMs ?? 3_600_000,
      clock,
    });
    this.#unknown = new TtlCache({
      ttlMs: options.negativeTtlMs ?? Math.min(60_000, options.cacheTtlMs),
      maxSize: Math.max(1, Math.min(options.cacheMaxEntries, 100_000)),
      clock,
    });
    this.#singleOnly = options.batchMax <= 1;
    this.#batcher = new Batcher<string, Profile | null>({
      clock,
      maxSize: Math.max(1, options.batchMax),
      maxWaitMs: options.batchWaitMs,
      maxConcurrentBatches: options.maxConcurrentBatches ?? Number.POSITIVE_INFINITY,
      run: (ids) => this.#lookupMany(ids),
    });
  }

  /**
   * The enrichment for one user. Throws transient errors (HttpError,
   * TimeoutError, CircuitOpenError) when no profile, not even a stale one, can be had.
   */
  async lookup(userId: string, trace?: Traced): Promise<Enrichment> {
    const cached = this.cached(userId);
    if (cached !== undefined) return cached;
    const stale = this.#profiles.peek(userId);
    if (stale && !this.#options.breaker.canPass()) {
      this.#options.onCache?.("stale");
      return { status: "stale", profile: stale.value };
    }
    this.#options.onCache?.("miss");
    try {
      const profile = await this.#singleFlight(userId, trace);
      return profile === null ? UNKNOWN : { status: "ok", profile };
    } catch (error) {
      const fallback = this.#profiles.peek(userId);
      if (fallback && (isRetriable(error) || error instanceof CircuitOpenError)) {
        this.#options.onCache?.("stale");
        return { status: "stale", profile: fallback.value };
      }
      throw error;
    }
  }

  /**
   * A fresh cache hit (a profile, or a user known not to exist), counted as a hit; undefined
   * otherwise. Synchronous, so most messages skip the lookup's promises and retry wrappers.
   */
  cached(userId: string): Enrichment | undefined {
    const fresh = this.#profiles.get(userId);
    if (fresh !== undefined) {
      this.#options.onCache?.("hit");
      return { status: "ok", profile: fresh };
    }
    if (this.#unknown.has(userId)) {
      this.#options.onCache?.("hit");
      return UNKNOWN;
    }
    return undefined;
  }

  #singleFlight(userId: string, trace: Traced | undefined): Promise<Profile | null> {
    if (trace) {
      const askers = this.#askers.get(userId);
      if (askers) askers.push(trace);
      else this.#askers.set(userId, [trace]);
    }
    let pending = this.#inFlight.get(userId);
    if (!pending) {
      pending = this.#batcher.add(userId).then((profile) => {
        if (profile === null) this.#unknown.set(userId, true);
        else if (this.#options.cacheTtlMs > 0) this.#profiles.set(userId, profile);
        return profile;
      }).finally(() => {
        this.#inFlight.delete(userId);
        this.#askers.delete(userId);
      });
      this.#inFlight.set(userId, pending);
    }
    return pending;
  }

  #guarded<T>(fn: () => Promise<T>): Promise<T> {
    // The breaker decides when the call has its slot, not before it waits for one: calls
    // queued when the breaker opens are refused, not sent into the outage.
    const { breaker, limiter } = this.#options;
    return limiter.run(() => breaker.run(fn, isRetriable));
  }

  async #lookupMany(ids: string[]): Promise<Array<Profile | null | Error>> {
    if (ids.length === 1 || this.#singleOnly) {
      return await Promise.all(ids.map((id) => this.#lookupOne(id)));
    }
    let answer: BatchLookup;
    try {
      this.#options.onBatch?.(ids.length);
      const trace = this.#batchTrace(ids);
      try {
        answer = await this.#guarded(() => this.#options.client.getUsers(ids, undefined, trace));
      } finally {
        trace?.end();
      }
    } catch (error) {
      if (error instanceof HttpError && (error.status === 404 || error.status === 405)) {
        this.#singleOnly = true;
        return await this.#lookupMany(ids);
      }
      if (error instanceof HttpError && (error.status === 400 || error.status === 413)) {
        const half = Math.ceil(ids.length / 2);
        const [a, b] = await Promise.all([
          this.#lookupMany(ids.slice(0, half)),
          this.#lookupMany(ids.slice(half)),
        ]);
        return [...a, ...b];
      }
      throw error;
    }
    return ids.map((id) => {
      const profile = answer.users.get(id);
      if (profile !== undefined) return profile;
      if (answer.missing.has(id)) return null;
      return retryLater(id, answer.retry.get(id) ?? "not_answered");
    });
  }

  /** A batch's own trace, linked to each message it serves (when spans are recorded). */
  #batchTrace(ids: readonly string[]): Traced | undefined {
    const tracer = this.#options.tracer;
    if (!tracer) return undefined;
    const links = tracer.exporting ? ids.flatMap((id) => this.#askers.get(id) ?? []) : [];
    const trace = tracer.linked("enrichment batch", SPAN_KIND.internal, links);
    trace.set("sluice.batch.size", ids.length);
    return trace;
  }

  async #lookupOne(id: string): Promise<Profile | null | Error> {
    try {
      this.#options.onBatch?.(1);
      // One id: a child of the (first) message asking for it.
      const trace = this.#askers.get(id)?.[0];
      return await this.#guarded(() => this.#options.client.getUser(id, undefined, trace));
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }
}
