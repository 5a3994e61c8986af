/**
 * Enrichment API simulator (contract section 3, seed 000 section 3.2): serves
 * the lab dataset with the latency and failures of a scenario, drawn from a
 * seeded stream so a run can be repeated. It also counts what it served, for
 * the summary's requests-per-message figures.
 */
import type { Dataset } from "./dataset.ts";
import { createRng, deriveSeed } from "./prng.ts";
import { type Scenario, SCENARIO_PROFILES } from "./scenario.ts";
import { sleep as defaultSleep } from "../src/lib/retry.ts";

export interface EnrichSimOptions {
  /** the users to serve */
  dataset: Dataset;
  /** latency and error behaviour, default "io_mild" */
  scenario?: Scenario;
  /** seed of the latency/error stream, default 1 */
  seed?: number;
  /** no latency, no simulated errors (the lab's ceiling); the overload limit still applies */
  instant?: boolean;
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
  /** clock for brownout windows, default Date.now */
  now?: () => number;
  /** default: an abortable setTimeout */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
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
  /** highest number of requests in flight at once */
  peakInFlight: number;
  inFlight: number;
}

export interface EnrichSim {
  /** base URL, e.g. http://127.0.0.1:41234 (no trailing slash) */
  readonly url: string;
  stats(): EnrichStats;
  close(): Promise<void>;
}

/** A decision for one request, drawn before any waiting so the stream order is arrival order. */
interface Plan {
  latencyMs: number;
  status: 200 | 429 | 500 | 503;
  retryAfter?: string;
  hang: boolean;
  error: string | null;
}

/** Starts the simulator on 127.0.0.1 with a free port. */
export function startEnrichSim(options: EnrichSimOptions): EnrichSim {
  const dataset = options.dataset;
  const scenario = options.scenario ?? "io_mild";
  const profile = SCENARIO_PROFILES[scenario];
  const instant = options.instant ?? false;
  const maxInFlight = options.maxInFlight ?? 256;
  const maxBatch = options.maxBatch ?? 100;
  const hangMs = options.hangMs ?? 6000;
  const slowEvery = options.slowEvery ?? 0;
  const slowMs = options.slowMs ?? 35_000;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const rng = createRng(deriveSeed(options.seed ?? 1, `enrich:${scenario}`));
  const startedAt = now();
  const stats: EnrichStats = {
    requests: 0,
    healthRequests: 0,
    singleRequests: 0,
    batchRequests: 0,
    idsRequested: 0,
    idsServed: 0,
    byStatus: {},
    peakInFlight: 0,
    inFlight: 0,
  };
  let requestSeq = 0;
  // Aborts every simulated delay on close, so shutdown never waits out a 35 s slow request.
  const closing = new AbortController();

  const plan = (ids: number): Plan => {
    if (instant) return { latencyMs: 0, status: 200, hang: false, error: null };
    let latencyMs = profile.latencyMedianMs === 0
      ? 0
      : rng.lognormal(profile.latencyMedianMs, profile.latencySigma) + profile.perIdMs * ids;
    const b = profile.brownout;
    if (b && (now() - startedAt) % b.periodMs < b.windowMs) {
      latencyMs = rng.int(b.latencyMs[0], b.latencyMs[1]);
      if (rng.chance(b.error503)) {
        return {
          latencyMs: rng.int(5, 50),
          status: 503,
          retryAfter: "1",
          hang: false,
          error: "brownout",
        };
      }
    }
    const roll = rng.next();
    if (roll < profile.hang) {
      return { latencyMs: hangMs, status: 500, hang: true, error: "timeout" };
    }
    if (roll < profile.hang + profile.error500) {
      return { latencyMs, status: 500, hang: false, error: "internal_error" };
    }
    if (roll < profile.hang + profile.error500 + profile.error429) {
      return { latencyMs, status: 429, retryAfter: "1", hang: false, error: "rate_limited" };
    }
    return { latencyMs: Math.round(latencyMs * 10) / 10, status: 200, hang: false, error: null };
  };

  const meta = (p: Plan) => ({
    request_id: `req-${(++requestSeq).toString(36).padStart(6, "0")}`,
    scenario,
    latency_ms: Math.round(p.latencyMs),
    simulated_error: p.error,
  });

  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
    return new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });
  };

  /** Waits out the plan's latency; returns an error response when the plan says fail. */
  // Delays end on close only: touching request.signal makes Deno 2.9 print a legacy-abort warning,
  // and a delay that outlives its client is what a real slow server does too.
  const play = async (p: Plan, seq: number): Promise<Response | undefined> => {
    let delay = p.latencyMs;
    if (slowEvery > 0 && seq % slowEvery === 0) delay = Math.max(delay, slowMs);
    await sleep(delay, closing.signal);
    if (p.status === 200) return undefined;
    const headers: Record<string, string> = p.retryAfter ? { "retry-after": p.retryAfter } : {};
    return json(p.status, { error: p.error, meta: meta(p) }, headers);
  };

  const single = async (rawId: string, seq: number): Promise<Response> => {
    let id: string;
    try {
      id = decodeURIComponent(rawId);
    } catch {
      return json(400, { error: "bad_user_id", message: "user id is not valid percent-encoding" });
    }
    stats.singleRequests++;
    stats.idsRequested++;
    const p = plan(1);
    const failure = await play(p, seq);
    if (failure) return failure;
    const user = dataset.profile(id);
    if (!user) return json(404, { error: "not_found", user_id: id, meta: meta(p) });
    stats.idsServed++;
    return json(200, { ...user, meta: meta(p) });
  };

  const batch = async (req: Request, seq: number): Promise<Response> => {
    stats.batchRequests++;
    let ids: unknown;
    try {
      ids = (await req.json() as { user_ids?: unknown })?.user_ids;
    } catch {
      return json(400, { error: "bad_request", message: "body is not JSON" });
    }
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === "string" && id !== "")) {
      return json(400, {
        error: "bad_request",
        message: "user_ids must be an array of non-empty strings",
      });
    }
    if (ids.length > maxBatch) {
      return json(400, {
        error: "batch_too_large",
        message: `at most ${maxBatch} user_ids per call, got ${ids.length}`,
      });
    }
    const unique = [...new Set(ids as string[])];
    stats.idsRequested += unique.length;
    const p = plan(unique.length);
    const failure = await play(p, seq);
    if (failure) return failure;
    const users: unknown[] = [];
    const missing: string[] = [];
    const errors: Array<{ user_id: string; code: string; message: string }> = [];
    for (const id of unique) {
      if (!instant && rng.chance(profile.batchIdError)) {
        errors.push({ user_id: id, code: "upstream_error", message: "simulated per-id failure" });
        continue;
      }
      const user = dataset.profile(id);
      if (user) {
        users.push(user);
        stats.idsServed++;
      } else {
        missing.push(id);
      }
    }
    return json(200, { users, missing, errors, meta: meta(p) });
  };

  const handler = async (req: Request): Promise<Response> => {
    stats.requests++;
    const seq = stats.requests;
    const path = new URL(req.url).pathname;
    if (path === "/healthz") {
      stats.healthRequests++;
      return json(200, { status: "ok", scenario });
    }
    if (stats.inFlight >= maxInFlight) {
      await req.body?.cancel();
      return json(429, {
        error: "overloaded",
        message: `more than ${maxInFlight} requests in flight`,
      }, {
        "retry-after": "1",
      });
    }
    stats.inFlight++;
    stats.peakInFlight = Math.max(stats.peakInFlight, stats.inFlight);
    try {
      if (path === "/v1/users:batch") {
        if (req.method !== "POST") return json(405, { error: "method_not_allowed" });
        return await batch(req, seq);
      }
      if (path.startsWith("/v1/users/") && path.length > "/v1/users/".length) {
        if (req.method !== "GET") return json(405, { error: "method_not_allowed" });
        return await single(path.slice("/v1/users/".length), seq);
      }
      return json(404, { error: "no_route", path });
    } catch (err) {
      // Closing cut a simulated delay short; nobody reads this answer.
      if (closing.signal.aborted) return new Response(null, { status: 503 });
      throw err;
    } finally {
      stats.inFlight--;
    }
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    stats: () => ({ ...stats, byStatus: { ...stats.byStatus } }),
    close: () => {
      closing.abort();
      return server.shutdown();
    },
  };
}
