/**
 * Enrichment API simulator (docs/messages.md): serves
 * the lab dataset with the latency and failures of a scenario, drawn from a
 * seeded stream so a run can be repeated. It also counts what it served, for
 * the summary's requests-per-message figures.
 */
import { createRng, deriveSeed } from "./prng.ts";
import { SCENARIO_PROFILES, type SimulatorOptions } from "./scenario.ts";
import { sleep as defaultSleep } from "../src/lib/clock.ts";
import { type LocalServer, serveLocal } from "./local_server.ts";

/** `instant` leaves the overload limit (`maxInFlight`) in place. */
export interface EnrichSimOptions extends SimulatorOptions {
  /** more requests than this in flight answer 429 with Retry-After: 1, default 256 */
  maxInFlight?: number;
  /** largest batch accepted; above it 400, default 100 */
  maxBatch?: number;
  /** how long a simulated timeout hangs, default 6000 ms (past the worker's 5 s timeout, yet runs finish) */
  hangMs?: number;
  /** chaos: every Nth request is delayed `slowMs` (0 = off), default 0 */
  slowEvery?: number;
  /** chaos: delay of the slow requests, default 35000 ms (past a 30 s visibility timeout) */
  slowMs?: number;
}

/** What the simulator has served so far. */
export interface EnrichStats {
  /** every request, any path and status */
  requests: number;
  /** GET /healthz requests (included in `requests`) */
  healthRequests: number;
  singleRequests: number;
  batchRequests: number;
  /** ids asked for, single and batch */
  idsRequested: number;
  /** profiles returned */
  idsServed: number;
  /** responses by status code */
  byStatus: Record<string, number>;
  /** requests (health checks excluded) that arrived inside a brownout window */
  brownoutRequests: number;
  /** the first 200 answered after the first brownout window ended: how long after, ms */
  recoveredAfterMs?: number;
  /** highest number of requests in flight at once */
  peakInFlight: number;
  inFlight: number;
}

/** The simulator as served: `url` is its base URL (no trailing slash). */
export interface EnrichSim extends LocalServer {
  stats(): EnrichStats;
}

/** A decision for one request, drawn before any waiting so the stream order is arrival order. */
interface Plan {
  latencyMs: number;
  status: 200 | 429 | 500 | 503;
  retryAfter?: string;
  hang: boolean;
  error: string | null;
}

/** The simulator's state and behaviour; `startEnrichSim` serves its `handle`. */
class EnrichService {
  readonly stats: EnrichStats = {
    requests: 0,
    healthRequests: 0,
    singleRequests: 0,
    batchRequests: 0,
    idsRequested: 0,
    idsServed: 0,
    byStatus: {},
    brownoutRequests: 0,
    peakInFlight: 0,
    inFlight: 0,
  };
  // Aborts every simulated delay on close, so shutdown never waits out a 35 s slow request.
  readonly closing = new AbortController();
  readonly #o: Required<Omit<EnrichSimOptions, "seed">>;
  readonly #profile;
  readonly #rng;
  /** when the first request (health checks aside) arrived: brownout windows count from it */
  #startedAt: number | undefined;
  #requestSeq = 0;

  constructor(options: EnrichSimOptions) {
    this.#o = {
      dataset: options.dataset,
      scenario: options.scenario ?? "io_mild",
      instant: options.instant ?? false,
      maxInFlight: options.maxInFlight ?? 256,
      maxBatch: options.maxBatch ?? 100,
      hangMs: options.hangMs ?? 6000,
      slowEvery: options.slowEvery ?? 0,
      slowMs: options.slowMs ?? 35_000,
      now: options.now ?? Date.now,
      sleep: options.sleep ?? defaultSleep,
    };
    this.#profile = SCENARIO_PROFILES[this.#o.scenario];
    this.#rng = createRng(deriveSeed(options.seed ?? 1, `enrich:${this.#o.scenario}`));
  }

  /** Whether now is inside a brownout window; the first call starts the brownout clock. */
  #inBrownout(b: { offsetMs?: number; periodMs: number; windowMs: number }): boolean {
    const now = this.#o.now();
    this.#startedAt ??= now;
    const elapsed = now - this.#startedAt - (b.offsetMs ?? 0);
    const inside = elapsed >= 0 && elapsed % b.periodMs < b.windowMs;
    if (inside) this.stats.brownoutRequests++;
    return inside;
  }

  /** A 200 answered: the first after the first brownout window is the recovery. */
  #noteRecovery(): void {
    const b = this.#profile.brownout;
    if (!b || this.#startedAt === undefined || this.stats.recoveredAfterMs !== undefined) return;
    const end = this.#startedAt + (b.offsetMs ?? 0) + b.windowMs;
    const now = this.#o.now();
    if (now >= end) this.stats.recoveredAfterMs = now - end;
  }

  /** Latency and failure for one request, drawn before any waiting (arrival order). */
  #plan(ids: number): Plan {
    if (this.#o.instant) return { latencyMs: 0, status: 200, hang: false, error: null };
    const profile = this.#profile;
    const rng = this.#rng;
    let latencyMs = profile.latencyMedianMs === 0
      ? 0
      : rng.lognormal(profile.latencyMedianMs, profile.latencySigma) + profile.perIdMs * ids;
    const b = profile.brownout;
    if (b && this.#inBrownout(b)) {
      latencyMs = rng.int(b.latencyMs[0], b.latencyMs[1]);
      if (rng.chance(b.error503)) {
        return {
          latencyMs: rng.int(5, 50),
          status: 503,
          ...(b.retryAfterSeconds > 0 ? { retryAfter: String(b.retryAfterSeconds) } : {}),
          hang: false,
          error: "brownout",
        };
      }
    }
    const roll = rng.next();
    if (roll < profile.hang) {
      return { latencyMs: this.#o.hangMs, status: 500, hang: true, error: "timeout" };
    }
    if (roll < profile.hang + profile.error500) {
      return { latencyMs, status: 500, hang: false, error: "internal_error" };
    }
    if (roll < profile.hang + profile.error500 + profile.error429) {
      return { latencyMs, status: 429, retryAfter: "1", hang: false, error: "rate_limited" };
    }
    return { latencyMs: Math.round(latencyMs * 10) / 10, status: 200, hang: false, error: null };
  }

  #meta(p: Plan) {
    return {
      request_id: `req-${(++this.#requestSeq).toString(36).padStart(6, "0")}`,
      scenario: this.#o.scenario,
      latency_ms: Math.round(p.latencyMs),
      simulated_error: p.error,
    };
  }

  #json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
    this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
    return new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });
  }

  /** Waits out the plan's latency; returns an error response when the plan says fail. */
  // Delays end on close only: touching request.signal makes Deno 2.9 print a legacy-abort warning,
  // and a delay that outlives its client is what a real slow server does too.
  async #play(p: Plan, seq: number): Promise<Response | undefined> {
    let delay = p.latencyMs;
    if (this.#o.slowEvery > 0 && seq % this.#o.slowEvery === 0) {
      delay = Math.max(delay, this.#o.slowMs);
    }
    await this.#o.sleep(delay, this.closing.signal);
    if (p.status === 200) {
      this.#noteRecovery();
      return undefined;
    }
    const headers: Record<string, string> = p.retryAfter ? { "retry-after": p.retryAfter } : {};
    return this.#json(p.status, { error: p.error, meta: this.#meta(p) }, headers);
  }

  async #single(rawId: string, seq: number): Promise<Response> {
    let id: string;
    try {
      id = decodeURIComponent(rawId);
    } catch {
      return this.#json(400, {
        error: "bad_user_id",
        message: "user id is not valid percent-encoding",
      });
    }
    this.stats.singleRequests++;
    this.stats.idsRequested++;
    const p = this.#plan(1);
    const failure = await this.#play(p, seq);
    if (failure) return failure;
    const user = this.#o.dataset.profile(id);
    if (!user) return this.#json(404, { error: "not_found", user_id: id, meta: this.#meta(p) });
    this.stats.idsServed++;
    return this.#json(200, { ...user, meta: this.#meta(p) });
  }

  /** The batch body's ids, or the 400 answer for a bad body. */
  async #batchIds(req: Request): Promise<string[] | Response> {
    let ids: unknown;
    try {
      ids = (await req.json() as { user_ids?: unknown })?.user_ids;
    } catch {
      return this.#json(400, { error: "bad_request", message: "body is not JSON" });
    }
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === "string" && id !== "")) {
      return this.#json(400, {
        error: "bad_request",
        message: "user_ids must be an array of non-empty strings",
      });
    }
    if (ids.length > this.#o.maxBatch) {
      return this.#json(400, {
        error: "batch_too_large",
        message: `at most ${this.#o.maxBatch} user_ids per call, got ${ids.length}`,
      });
    }
    return [...new Set(ids as string[])];
  }

  async #batch(req: Request, seq: number): Promise<Response> {
    this.stats.batchRequests++;
    const unique = await this.#batchIds(req);
    if (unique instanceof Response) return unique;
    this.stats.idsRequested += unique.length;
    const p = this.#plan(unique.length);
    const failure = await this.#play(p, seq);
    if (failure) return failure;
    const users: unknown[] = [];
    const missing: string[] = [];
    const errors: Array<{ user_id: string; code: string; message: string }> = [];
    for (const id of unique) {
      if (!this.#o.instant && this.#rng.chance(this.#profile.batchIdError)) {
        errors.push({ user_id: id, code: "upstream_error", message: "simulated per-id failure" });
        continue;
      }
      const user = this.#o.dataset.profile(id);
      if (user) {
        users.push(user);
        this.stats.idsServed++;
      } else {
        missing.push(id);
      }
    }
    return this.#json(200, { users, missing, errors, meta: this.#meta(p) });
  }

  #route(req: Request, path: string, seq: number): Promise<Response> | Response {
    if (path === "/v1/users:batch") {
      if (req.method !== "POST") return this.#json(405, { error: "method_not_allowed" });
      return this.#batch(req, seq);
    }
    if (path.startsWith("/v1/users/") && path.length > "/v1/users/".length) {
      if (req.method !== "GET") return this.#json(405, { error: "method_not_allowed" });
      return this.#single(path.slice("/v1/users/".length), seq);
    }
    return this.#json(404, { error: "no_route", path });
  }

  handle = async (req: Request): Promise<Response> => {
    const stats = this.stats;
    stats.requests++;
    const seq = stats.requests;
    const path = new URL(req.url).pathname;
    if (path === "/healthz") {
      stats.healthRequests++;
      return this.#json(200, { status: "ok", scenario: this.#o.scenario });
    }
    if (stats.inFlight >= this.#o.maxInFlight) {
      await req.body?.cancel();
      return this.#json(429, {
        error: "overloaded",
        message: `more than ${this.#o.maxInFlight} requests in flight`,
      }, { "retry-after": "1" });
    }
    stats.inFlight++;
    stats.peakInFlight = Math.max(stats.peakInFlight, stats.inFlight);
    try {
      return await this.#route(req, path, seq);
    } catch (err) {
      // Closing cut a simulated delay short; nobody reads this answer.
      if (this.closing.signal.aborted) return new Response(null, { status: 503 });
      throw err;
    } finally {
      stats.inFlight--;
    }
  };
}

/** Starts the simulator on 127.0.0.1 with a free port. */
export function startEnrichSim(options: EnrichSimOptions): EnrichSim {
  const service = new EnrichService(options);
  return {
    ...serveLocal(service.handle, service.closing),
    stats: () => ({ ...service.stats, byStatus: { ...service.stats.byStatus } }),
  };
}
