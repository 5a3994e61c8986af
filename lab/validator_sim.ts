/**
 * Validator simulator (docs/messages.md): the authority on the output
 * document. It checks each submission field by field against what the
 * generator sent and the dataset holds, answers 400 with a short reason when
 * anything differs, and records accept times and duplicate acceptances for the
 * lab summary.
 */
import type { Dataset } from "./dataset.ts";
import type { ExpectedMessage } from "./generator.ts";
import { createRng, deriveSeed } from "./prng.ts";
import { SCENARIO_PROFILES, type SimulatorOptions } from "./scenario.ts";
import { sleep as defaultSleep } from "../src/lib/clock.ts";
import { type LocalServer, serveLocal } from "./local_server.ts";
import type { KeyedSubmission } from "./key_windows.ts";

/** `scenario` decides the rare 5xx (flaky only); `instant`: no latency, no simulated 5xx. */
export interface ValidatorSimOptions extends SimulatorOptions {
  /** valid messages by message_id; anything else is rejected as unknown */
  expected: ReadonlyMap<string, ExpectedMessage>;
  /** latency range per submission in ms, default [1, 4] */
  latencyMs?: [number, number];
  /**
   * Every Nth first submission of a message_id is answered 307 to `/login`,
   * which says 200 to anything: a worker that follows redirects "succeeds"
   * without an ingest, and the lab counts the message lost. Default 0 (never).
   */
  redirectEvery?: number;
  /** FIFO runs: every submission of `group` is answered 503 for `ms` from the first one */
  failingGroup?: { group: string; ms: number };
}

export interface ValidatorStats {
  requests: number;
  /** first acceptances (distinct message_ids) */
  accepted: number;
  /** acceptances of a message_id already accepted */
  duplicates: number;
  /** 400 answers */
  rejected: number;
  /** 400 answers by reason code */
  rejectedByReason: Record<string, number>;
  /** simulated 5xx answers */
  errors5xx: number;
  /** redirects answered (redirectEvery) */
  redirects: number;
  /** requests that followed a redirect to `/login` (should stay 0) */
  followedRedirects: number;
  /** FIFO runs: messages first accepted after a later message of their group */
  orderInversions: number;
}

export interface Rejection {
  messageId: string | undefined;
  reason: string;
  detail: string;
}

/** The simulator as served: `url` is its base URL, without /ingest. */
export interface ValidatorSim extends LocalServer {
  stats(): ValidatorStats;
  /** first accept time (ms) per message_id */
  readonly acceptedAt: ReadonlyMap<string, number>;
  /** acceptances per message_id (2+ means a duplicate submission) */
  readonly acceptCount: ReadonlyMap<string, number>;
  /** every 400, oldest first (capped at 10000) */
  readonly rejections: readonly Rejection[];
  /** every submission with a string user_id: whose and when it arrived (capped at 1,000,000) */
  readonly submissions: readonly KeyedSubmission[];
}

/** The checks, without HTTP: a reason code and detail for the first difference, or undefined if valid. */
export function checkDocument(
  doc: unknown,
  expected: ReadonlyMap<string, ExpectedMessage>,
  dataset: Dataset,
): { reason: string; detail: string } | undefined {
  if (!isPlainObject(doc)) return { reason: "not_object", detail: "document is not a JSON object" };
  const keys = Object.keys(doc).sort();
  const wanted = ["enrichment", "event_ts", "message_id", "payload", "user", "user_id"];
  if (keys.join(",") !== wanted.join(",")) {
    const extra = keys.filter((k) => !wanted.includes(k));
    const missing = wanted.filter((k) => !keys.includes(k));
    return {
      reason: "keys",
      detail: `keys must be exactly ${wanted.join(",")}` +
        (missing.length ? `; missing ${missing.join(",")}` : "") +
        (extra.length ? `; unexpected ${extra.join(",")}` : ""),
    };
  }
  if (typeof doc.message_id !== "string") {
    return { reason: "message_id", detail: "message_id must be a string" };
  }
  const exp = expected.get(doc.message_id) ?? handSent(doc, dataset);
  if (!exp) {
    return { reason: "unknown_message_id", detail: `no such message: ${short(doc.message_id)}` };
  }
  if (doc.user_id !== exp.user_id) {
    return {
      reason: "user_id",
      detail: `user_id must be the string ${JSON.stringify(exp.user_id)}, got ${
        short(JSON.stringify(doc.user_id))
      }`,
    };
  }
  if (doc.event_ts !== exp.event_ts) {
    return {
      reason: "event_ts",
      detail: `event_ts must be ${exp.event_ts}, got ${short(JSON.stringify(doc.event_ts))}`,
    };
  }
  if (!deepEqual(doc.payload, exp.payload)) {
    return { reason: "payload", detail: "payload differs from the input message" };
  }
  const enrichment = doc.enrichment;
  if (!isPlainObject(enrichment) || typeof enrichment.status !== "string") {
    return { reason: "enrichment", detail: "enrichment must be an object with a string status" };
  }
  if (!exp.known) {
    if (doc.user !== null) {
      return { reason: "user", detail: "user must be null for an unknown user" };
    }
    if (enrichment.status !== "unknown_user") {
      return {
        reason: "enrichment",
        detail: `enrichment.status must be "unknown_user", got ${
          short(JSON.stringify(enrichment.status))
        }`,
      };
    }
    return undefined;
  }
  if (enrichment.status !== "ok" && enrichment.status !== "stale") {
    return {
      reason: "enrichment",
      detail: `enrichment.status must be "ok" or "stale", got ${
        short(JSON.stringify(enrichment.status))
      }`,
    };
  }
  const profile = dataset.profile(exp.user_id);
  if (!isPlainObject(doc.user)) {
    return { reason: "user", detail: "user must be the profile object" };
  }
  if ("meta" in doc.user) {
    return { reason: "user", detail: "user must not carry the enrichment meta" };
  }
  if (!deepEqual(doc.user, profile)) {
    return {
      reason: "user",
      detail: `user differs from the profile of ${JSON.stringify(exp.user_id)}`,
    };
  }
  return undefined;
}

/**
 * What the lab expects of a message it did not generate (sent by hand with `aws sqs send-message`
 * or `deno task lab send`): the document's own fields, if they are well-formed, and the dataset
 * decides whether the user is known. Undefined when the fields cannot be from a valid message.
 */
function handSent(doc: Record<string, unknown>, dataset: Dataset): ExpectedMessage | undefined {
  const { message_id, user_id, event_ts, payload } = doc;
  if (typeof message_id !== "string" || message_id === "") return undefined;
  if (typeof user_id !== "string" || user_id === "") return undefined;
  if (typeof event_ts !== "number" || !Number.isFinite(event_ts)) return undefined;
  if (!isPlainObject(payload)) return undefined;
  const known = dataset.profile(user_id) !== undefined;
  return { message_id, user_id, event_ts, payload, known };
}

/** Starts the validator on 127.0.0.1 with a free port. */
export function startValidatorSim(options: ValidatorSimOptions): ValidatorSim {
  const state: SimState = {
    acceptedAt: new Map(),
    acceptCount: new Map(),
    rejections: [],
    submissions: [],
    stats: {
      requests: 0,
      accepted: 0,
      duplicates: 0,
      rejected: 0,
      rejectedByReason: {},
      errors5xx: 0,
      redirects: 0,
      followedRedirects: 0,
      orderInversions: 0,
    },
    lastSeq: new Map(),
    closing: new AbortController(),
  };
  const { stats, closing } = state;
  const ingest = createIngest(options, state);

  const handler = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    if (path === "/stats" && req.method === "GET") return reply(200, stats);
    if (path === "/healthz") return reply(200, { status: "ok" });
    if (path === "/login") {
      // The trap behind redirectEvery: a 200 that ingests nothing.
      await req.body?.cancel();
      stats.followedRedirects++;
      return reply(200, { status: "welcome" });
    }
    if (path === "/ingest" || path === "/ingest/") {
      if (req.method !== "POST") return reply(405, { status: "error", reason: "POST only" });
      stats.requests++;
      try {
        return await ingest(req);
      } catch (err) {
        if (closing.signal.aborted) return new Response(null, { status: 503 });
        throw err;
      }
    }
    await req.body?.cancel();
    return reply(404, {
      status: "error",
      reason: `no route ${req.method} ${path}; submit to /ingest`,
    });
  };

  return {
    ...serveLocal(handler, closing),
    stats: () => ({ ...stats, rejectedByReason: { ...stats.rejectedByReason } }),
    acceptedAt: state.acceptedAt,
    acceptCount: state.acceptCount,
    rejections: state.rejections,
    submissions: state.submissions,
  };
}

/** What the simulator records, shared by its handlers. */
interface SimState {
  acceptedAt: Map<string, number>;
  acceptCount: Map<string, number>;
  rejections: Rejection[];
  submissions: KeyedSubmission[];
  stats: ValidatorStats;
  /** FIFO runs: the highest place accepted so far, per group */
  lastSeq: Map<string, number>;
  closing: AbortController;
}

/** What a body that is not JSON parses to. */
const NOT_JSON = Symbol("not JSON");

function reply(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The `POST /ingest` handler: latency, the rare 5xx, redirects, the checks, the counting. */
function createIngest(
  options: ValidatorSimOptions,
  state: SimState,
): (req: Request) => Promise<Response> {
  const { stats, rejections } = state;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const instant = options.instant ?? false;
  const [minMs, maxMs] = options.latencyMs ?? [1, 4];
  const scenario = options.scenario ?? "io_mild";
  const error5xx = instant ? 0 : SCENARIO_PROFILES[scenario].validator5xx;
  const rng = createRng(deriveSeed(options.seed ?? 1, `validator:${scenario}`));
  const redirectEvery = options.redirectEvery ?? 0;
  /** message_ids already submitted once: only a first submission may be redirected. */
  const seen = new Set<string>();
  let firstSubmissions = 0;

  let failingSince: number | undefined;
  const failing = (messageId: string | undefined): boolean => {
    const f = options.failingGroup;
    if (!f || messageId === undefined || options.expected.get(messageId)?.group !== f.group) {
      return false;
    }
    failingSince ??= now();
    return now() - failingSince < f.ms;
  };

  const reject = (messageId: string | undefined, reason: string, detail: string) => {
    stats.rejected++;
    stats.rejectedByReason[reason] = (stats.rejectedByReason[reason] ?? 0) + 1;
    if (rejections.length < 10_000) rejections.push({ messageId, reason, detail });
    return reply(400, { status: "rejected", reason, detail });
  };

  return async (req) => {
    const text = await req.text();
    let doc: unknown = NOT_JSON;
    try {
      doc = JSON.parse(text);
    } catch {
      // said below, after the latency
    }
    // Per-key windows (RATE_LIMIT) are judged by arrival, before the simulated latency.
    const user = isPlainObject(doc) ? doc.user_id : undefined;
    if (typeof user === "string" && state.submissions.length < 1_000_000) {
      state.submissions.push({ key: user, at: now() });
    }
    // Drawn before waiting so the stream order is arrival order.
    const latency = instant ? 0 : rng.int(minMs, maxMs);
    const fail = !instant && rng.chance(error5xx);
    await sleep(latency, state.closing.signal);
    if (fail) {
      stats.errors5xx++;
      return reply(503, { status: "error", reason: "simulated validator failure" });
    }
    if (doc === NOT_JSON) return reject(undefined, "not_json", "body is not valid JSON");
    const messageId = isPlainObject(doc) && typeof doc.message_id === "string"
      ? doc.message_id
      : undefined;
    if (failing(messageId)) {
      stats.errors5xx++;
      return reply(503, { status: "error", reason: "simulated failing message group" });
    }
    if (messageId !== undefined && redirectEvery > 0 && !seen.has(messageId)) {
      seen.add(messageId);
      if (++firstSubmissions % redirectEvery === 0) {
        stats.redirects++;
        return new Response(null, { status: 307, headers: { location: "/login" } });
      }
    }
    const problem = checkDocument(doc, options.expected, options.dataset);
    if (problem) return reject(messageId, problem.reason, problem.detail);
    const id = messageId!;
    const count = (state.acceptCount.get(id) ?? 0) + 1;
    state.acceptCount.set(id, count);
    if (count === 1) {
      state.acceptedAt.set(id, now());
      stats.accepted++;
      countInversion(state, options.expected.get(id));
    } else {
      // Still 200: a real validator would not fail a retry, the lab just counts it against the worker.
      stats.duplicates++;
    }
    return reply(200, { status: "accepted", duplicate: count > 1 });
  };
}

/**
 * FIFO runs: a message accepted after a later one of its group is an order inversion. The first
 * acceptances only: a redelivered copy submitted again is a duplicate, counted as such.
 */
function countInversion(state: SimState, expected: ExpectedMessage | undefined): void {
  if (expected?.group === undefined || expected.seq === undefined) return;
  const last = state.lastSeq.get(expected.group) ?? 0;
  if (expected.seq < last) state.stats.orderInversions++;
  else state.lastSeq.set(expected.group, expected.seq);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function short(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Structural equality of JSON values; key order does not matter, but key sets and types do. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.hasOwn(bo, k) && deepEqual(ao[k], bo[k]));
}
