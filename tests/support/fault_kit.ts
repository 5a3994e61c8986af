/**
 * Shared pieces of the fault tests (tests/fault/): controllable enrichment and
 * validator fakes on 127.0.0.1, the worker as a real child process, and small
 * helpers to read its metrics. Everything binds 127.0.0.1 and closes in `close()`.
 */
import { startCommand } from "../../lab/start_command.ts";
import assert from "node:assert/strict";

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

/** A valid message body; `event_ts` numeric so the document is easy to compare. */
export function msg(id: string, user = `u-${id}`, payload: Record<string, unknown> = {}): string {
  return JSON.stringify({ message_id: id, user_id: user, event_ts: 1735689600, payload });
}

export interface EnrichRequest {
  ids: string[];
  status: number;
  /** Date.now() when the request arrived. */
  at: number;
}

/**
 * Enrichment API fake: every user id is known (profile `{user_id, segment, country}`)
 * unless it starts with "unknown". The fields below change its behaviour at run time.
 */
export interface EnrichFake {
  readonly url: string;
  /** Every request in arrival order (single and batch). */
  readonly requests: EnrichRequest[];
  /** Answer every request with this status (e.g. 503) instead of the profile; undefined = healthy. */
  failWith: number | undefined;
  /** `Retry-After` header sent with failures. */
  retryAfter: string | undefined;
  /** Wait this long before answering, ms (ends early on close). */
  delayMs: number;
  close(): Promise<void>;
}

export function startEnrichFake(): EnrichFake {
  const closing = new AbortController();
  const profile = (id: string) => ({ user_id: id, segment: "casual", country: "DE" });
  const fake: EnrichFake = {
    url: "",
    requests: [],
    failWith: undefined,
    retryAfter: undefined,
    delayMs: 0,
    close: async () => {
      closing.abort();
      await server.shutdown();
    },
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      let ids: string[];
      const batch = request.method === "POST" && url.pathname === "/v1/users:batch";
      if (batch) {
        ids = ((await request.json()) as { user_ids: string[] }).user_ids;
      } else if (url.pathname.startsWith("/v1/users/")) {
        ids = [decodeURIComponent(url.pathname.slice("/v1/users/".length))];
      } else {
        await request.body?.cancel();
        return new Response("no route", { status: 404 });
      }
      const entry: EnrichRequest = { ids, status: 200, at: Date.now() };
      fake.requests.push(entry);
      // Decide before the delay: a request that arrived during a brownout fails.
      const failWith = fake.failWith;
      const retryAfter = fake.retryAfter;
      await pause(fake.delayMs, closing.signal);
      if (failWith !== undefined) {
        entry.status = failWith;
        return Response.json({ error: "brownout" }, {
          status: failWith,
          headers: retryAfter ? { "retry-after": retryAfter } : {},
        });
      }
      if (batch) {
        return Response.json({
          users: ids.filter((id) => !id.startsWith("unknown")).map(profile),
          missing: ids.filter((id) => id.startsWith("unknown")),
          errors: [],
        });
      }
      const id = ids[0]!;
      if (id.startsWith("unknown")) {
        entry.status = 404;
        return Response.json({ error: "not_found" }, { status: 404 });
      }
      return Response.json({ ...profile(id), meta: { request_id: "r" } });
    },
  );
  (fake as { url: string }).url = `http://127.0.0.1:${server.addr.port}`;
  return fake;
}

/** Validator fake: counts 2xx answers per message_id; can fail or be slow at run time. */
export interface ValidatorFake {
  readonly url: string;
  /** message_id -> number of submissions answered 2xx. */
  readonly accepted: Map<string, number>;
  /** Documents answered 2xx, in order, as parsed JSON. */
  readonly docs: Array<Record<string, unknown>>;
  /** Every submission's arrival time and answer. */
  readonly requests: Array<{ id: string; status: number; at: number }>;
  /** Answer every submission with this status (e.g. 503); undefined = accept. */
  failWith: number | undefined;
  delayMs: number;
  close(): Promise<void>;
}

export function startValidatorFake(): ValidatorFake {
  const closing = new AbortController();
  const fake: ValidatorFake = {
    url: "",
    accepted: new Map(),
    docs: [],
    requests: [],
    failWith: undefined,
    delayMs: 0,
    close: async () => {
      closing.abort();
      await server.shutdown();
    },
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      if (new URL(request.url).pathname !== "/ingest") {
        await request.body?.cancel();
        return new Response("no route", { status: 404 });
      }
      const doc = JSON.parse(await request.text()) as Record<string, unknown>;
      const id = String(doc.message_id);
      const failWith = fake.failWith;
      await pause(fake.delayMs, closing.signal);
      fake.requests.push({ id, status: failWith ?? 200, at: Date.now() });
      if (failWith !== undefined) {
        return Response.json({ error: "burst" }, { status: failWith });
      }
      fake.accepted.set(id, (fake.accepted.get(id) ?? 0) + 1);
      fake.docs.push(doc);
      return Response.json({ status: "accepted" });
    },
  );
  (fake as { url: string }).url = `http://127.0.0.1:${server.addr.port}`;
  return fake;
}

/** Every id in `ids` was accepted exactly once, and nothing else was. */
export function assertAcceptedOnce(validator: ValidatorFake, ids: readonly string[]): void {
  const twice = [...validator.accepted].filter(([, n]) => n > 1).map(([id]) => id);
  assert.deepEqual(twice, [], "no message accepted twice");
  const missing = ids.filter((id) => !validator.accepted.has(id));
  assert.deepEqual(missing, [], "every message accepted");
  assert.equal(validator.accepted.size, ids.length, "nothing else accepted");
}

/** The value of one sample in a Prometheus text exposition; 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? "").split(",").filter(Boolean);
    if (want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return 0;
}

/** The worker as a child process (`deno run ... src/main.ts`), its stdout kept as lines. */
export interface WorkerProcess {
  readonly pid: number;
  /** Every stdout line so far (JSON log lines). */
  readonly lines: string[];
  /** stderr text so far. */
  readonly stderr: () => string;
  /** The health server's port, from its "health server listening" log line. */
  readonly port: Promise<number>;
  readonly status: Promise<Deno.CommandStatus>;
  kill(signal: Deno.Signal): void;
  /** GET a path on the health server; returns status and body text. */
  get(path: string): Promise<{ status: number; text: string }>;
  /** SIGKILL if still running, then wait for the exit and the end of its output. */
  close(): Promise<void>;
}

/** Passed through from the test's own environment so deno finds its cache. */
const PASS_ENV = ["HOME", "PATH", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "NPM_CONFIG_REGISTRY"];

/**
 * Starts the worker as `deno task start` does (startCommand())
 * directly (no shell, no npx) so signals reach the worker. `env` is its whole
 * configuration; LOG_LEVEL must be info or lower for `port` to resolve.
 */
export function spawnWorker(
  env: Record<string, string>,
  /** Another argv (e.g. `setsid deno task start`); default startCommand(). */
  argv: string[] = startCommand(),
): WorkerProcess {
  const passed: Record<string, string> = {};
  for (const name of PASS_ENV) {
    const value = Deno.env.get(name);
    if (value !== undefined) passed[name] = value;
  }
  const [program, ...args] = argv;
  const child = new Deno.Command(program!, {
    args,
    cwd: new URL("../../", import.meta.url).pathname,
    env: { ...passed, NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let stderr = "";
  const port = Promise.withResolvers<number>();
  const readLines = async () => {
    let partial = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      partial += chunk;
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        if (line.includes("health server listening")) {
          try {
            port.resolve(Number(JSON.parse(line).port));
          } catch {
            // not JSON: LOG_FORMAT=pretty is not supported here
          }
        }
      }
    }
    if (partial) lines.push(partial);
  };
  const readErr = async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  };
  const output = Promise.all([readLines(), readErr()]);
  const status = child.status.then(async (s) => {
    await output;
    port.reject(new Error(`worker exited (${s.code}) before listening: ${stderr.slice(-2000)}`));
    return s;
  });
  port.promise.catch(() => {});
  let exited = false;
  status.then(() => exited = true);
  return {
    pid: child.pid,
    lines,
    stderr: () => stderr,
    port: port.promise,
    status,
    kill(signal) {
      if (!exited) child.kill(signal);
    },
    async get(path) {
      const res = await fetch(`http://127.0.0.1:${await port.promise}${path}`);
      return { status: res.status, text: await res.text() };
    },
    async close() {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
      await status;
    },
  };
}

/** Log lines of a worker that parse as JSON. */
export function parsedLines(lines: readonly string[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of lines) {
    try {
      out.push(JSON.parse(line));
    } catch {
      // a partial or non-JSON line
    }
  }
  return out;
}
