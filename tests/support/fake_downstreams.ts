/**
 * The enrichment API and the validator as plain `(Request) => Response` handlers, so either
 * runtime can serve them: `startEnrichFake`/`startValidatorFake` (fault_kit.ts) under Deno, the
 * Bun probe (bun_core_probe.ts) under `Bun.serve`. No Deno or Bun API here. The fields of each
 * fake change its behaviour at run time; `abort()` ends the delays still pending (call it before
 * closing the server).
 */

/** Resolves after `ms`, or early when `signal` aborts; never rejects, always clears its timer. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Resolves when `promise` settles or `signal` aborts; never rejects. */
function untilSettled(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    promise.then(done, done);
  });
}

export interface EnrichRequest {
  ids: string[];
  /** A `POST /v1/users:batch` (else a single `GET /v1/users/{id}`). */
  batch: boolean;
  status: number;
  /** Date.now() when the request arrived. */
  at: number;
}

export interface EnrichFakeOptions {
  /** Whether a user exists; default: every id that does not start with "unknown". */
  known?: (id: string) => boolean;
  /** A known user's profile (a `meta` field is added, as the real API does); default
   * `{ user_id, segment: "casual", country: "DE" }`. */
  profile?: (id: string) => Record<string, unknown>;
}

export interface EnrichFake {
  handle(request: Request): Promise<Response>;
  /** Every request in arrival order (single and batch). */
  readonly requests: EnrichRequest[];
  /** Answer every request with this status (e.g. 503) instead of the profile; undefined = healthy. */
  failWith: number | undefined;
  /** One-shot statuses for the next batch calls, in order (e.g. `[503]`: the first one fails). */
  failBatches: number[];
  /** `Retry-After` header sent with failures. */
  retryAfter: string | undefined;
  /** Wait this long before answering, ms (ends early on `abort()`). */
  delayMs: number;
  /** Answer only once this settles (or on `abort()`): a lookup held as long as a test wants. */
  hold: Promise<void> | undefined;
  abort(): void;
}

export function createEnrichFake(options: EnrichFakeOptions = {}): EnrichFake {
  const closing = new AbortController();
  const known = options.known ?? ((id: string) => !id.startsWith("unknown"));
  const profile = options.profile ??
    ((id: string) => ({ user_id: id, segment: "casual", country: "DE" }));
  const withMeta = (id: string) => ({ ...profile(id), meta: { request_id: "r" } });
  const fake: EnrichFake = {
    requests: [],
    failWith: undefined,
    failBatches: [],
    retryAfter: undefined,
    delayMs: 0,
    hold: undefined,
    abort: () => closing.abort(),
    async handle(request) {
      const url = new URL(request.url);
      const batch = request.method === "POST" && url.pathname === "/v1/users:batch";
      let ids: string[];
      if (batch) ids = ((await request.json()) as { user_ids: string[] }).user_ids;
      else if (url.pathname.startsWith("/v1/users/")) {
        ids = [decodeURIComponent(url.pathname.slice("/v1/users/".length))];
      } else {
        await request.body?.cancel();
        return new Response("no route", { status: 404 });
      }
      const entry: EnrichRequest = { ids, batch, status: 200, at: Date.now() };
      fake.requests.push(entry);
      // Decide before the delay: a request that arrived during a brownout fails.
      const failWith = (batch ? fake.failBatches.shift() : undefined) ?? fake.failWith;
      const retryAfter = fake.retryAfter;
      await pause(fake.delayMs, closing.signal);
      if (fake.hold) await untilSettled(fake.hold, closing.signal);
      if (failWith !== undefined) {
        entry.status = failWith;
        const headers: Record<string, string> = retryAfter ? { "retry-after": retryAfter } : {};
        return Response.json({ error: "brownout" }, { status: failWith, headers });
      }
      if (batch) {
        return Response.json({
          users: ids.filter(known).map(withMeta),
          missing: ids.filter((id) => !known(id)),
          errors: [],
          meta: { request_id: `b${fake.requests.length}` },
        });
      }
      if (!known(ids[0]!)) {
        entry.status = 404;
        return Response.json({ error: "not_found" }, { status: 404 });
      }
      return Response.json(withMeta(ids[0]!));
    },
  };
  return fake;
}

export interface ValidatorFakeOptions {
  /** The status of an accepted submission; default 200. */
  acceptStatus?: number;
  /** A document's answer status when `failWith` and `failFirst` give none; default accept. */
  statusFor?: (doc: Record<string, unknown>) => number;
  /** The body of a failure answer; default `{ error: "burst" }`. */
  failBody?: Record<string, unknown>;
}

/** Validator fake: counts 2xx answers per message_id; can fail or be slow at run time. */
export interface ValidatorFake {
  handle(request: Request): Promise<Response>;
  /** message_id -> number of submissions answered 2xx. */
  readonly accepted: Map<string, number>;
  /** Documents answered 2xx, in order, as parsed JSON. */
  readonly docs: Array<Record<string, unknown>>;
  /** The same documents as the raw text sent (key order included). */
  readonly texts: string[];
  /** Every submission as it arrived (before the delay), its document too. */
  readonly arrivals: Array<{ id: string; at: number; doc: Record<string, unknown> }>;
  /** Every submission's answer and when it was given (after the delay). */
  readonly requests: Array<{ id: string; status: number; at: number }>;
  /** Answer every submission with this status (e.g. 503); undefined = accept. */
  failWith: number | undefined;
  /** message_id -> a status for its first submission only. */
  readonly failFirst: Map<string, number>;
  /** `Retry-After` header sent with failures. */
  retryAfter: string | undefined;
  delayMs: number;
  abort(): void;
}

export function createValidatorFake(options: ValidatorFakeOptions = {}): ValidatorFake {
  const closing = new AbortController();
  const acceptStatus = options.acceptStatus ?? 200;
  const failBody = options.failBody ?? { error: "burst" };
  const seen = new Set<string>();
  const fake: ValidatorFake = {
    accepted: new Map(),
    docs: [],
    texts: [],
    arrivals: [],
    requests: [],
    failWith: undefined,
    failFirst: new Map(),
    retryAfter: undefined,
    delayMs: 0,
    abort: () => closing.abort(),
    async handle(request) {
      if (request.method !== "POST" || new URL(request.url).pathname !== "/ingest") {
        await request.body?.cancel();
        return new Response("no route", { status: 404 });
      }
      const text = await request.text();
      const doc = JSON.parse(text) as Record<string, unknown>;
      const id = String(doc.message_id);
      fake.arrivals.push({ id, at: Date.now(), doc });
      const first = seen.has(id) ? undefined : fake.failFirst.get(id);
      seen.add(id);
      const given = options.statusFor?.(doc);
      const failWith = first ?? fake.failWith ??
        (given !== undefined && given >= 300 ? given : undefined);
      const retryAfter = fake.retryAfter;
      await pause(fake.delayMs, closing.signal);
      fake.requests.push({ id, status: failWith ?? acceptStatus, at: Date.now() });
      if (failWith !== undefined) {
        const headers: Record<string, string> = retryAfter ? { "retry-after": retryAfter } : {};
        return Response.json(failBody, { status: failWith, headers });
      }
      fake.accepted.set(id, (fake.accepted.get(id) ?? 0) + 1);
      fake.docs.push(doc);
      fake.texts.push(text);
      return Response.json({ status: "accepted" }, { status: acceptStatus });
    },
  };
  return fake;
}
