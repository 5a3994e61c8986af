/**
 * Shared pieces of the fault tests (tests/fault/): controllable enrichment and
 * validator fakes on 127.0.0.1, the worker as a real child process, and small
 * helpers to read its metrics. Everything binds 127.0.0.1 and closes in `close()`.
 */
import { startCommand } from "../../lab/start_command.ts";
import assert from "node:assert/strict";
import {
  createEnrichFake,
  createValidatorFake,
  type EnrichFake,
  type EnrichFakeOptions,
  type ValidatorFake,
  type ValidatorFakeOptions,
} from "./fake_downstreams.ts";
import { type LocalSqs, type LocalSqsOptions, startLocalSqs } from "./local_sqs.ts";
import {
  type LabEnv,
  runWorkerUntil,
  sendBodies,
  serveJson,
  startLabEnv,
  waitFor,
  workerEnv,
} from "./lab_env.ts";

export { pause } from "./fake_downstreams.ts";

/** A valid message body; `event_ts` numeric so the document is easy to compare. */
export function msg(id: string, user = `u-${id}`, payload: Record<string, unknown> = {}): string {
  return JSON.stringify({ message_id: id, user_id: user, event_ts: 1735689600, payload });
}

/** The enrichment fake of fake_downstreams.ts, served on 127.0.0.1. */
export type ServedEnrichFake = EnrichFake & { readonly url: string; close(): Promise<void> };
/** The validator fake of fake_downstreams.ts, served on 127.0.0.1. */
export type ServedValidatorFake = ValidatorFake & { readonly url: string; close(): Promise<void> };

export function startEnrichFake(options?: EnrichFakeOptions): ServedEnrichFake {
  return served(createEnrichFake(options));
}

export function startValidatorFake(options?: ValidatorFakeOptions): ServedValidatorFake {
  return served(createValidatorFake(options));
}

/** Serves a fake's handler; `close()` ends its pending delays, then the server. */
function served<T extends { handle(r: Request): Promise<Response>; abort(): void }>(
  fake: T,
): T & { readonly url: string; close(): Promise<void> } {
  const server = serveJson((request) => fake.handle(request));
  return Object.assign(fake, {
    url: server.url,
    close: async () => {
      fake.abort();
      await server.close();
    },
  });
}

/** A queue and both downstream fakes; `close()` ends all. */
interface Rig {
  enrich: ServedEnrichFake;
  validator: ServedValidatorFake;
  /** Env vars for a worker against the queue and both fakes; `overrides` win. */
  env(overrides?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

/** A lab (fauxqs with a main queue and a DLQ) and both downstream fakes (env: lab.env). */
export interface FaultRig extends Rig {
  lab: LabEnv;
  /** Sends msg(id) for every id to the main queue. */
  send(ids: readonly string[]): Promise<void>;
}

export async function startRig(options?: Parameters<typeof startLabEnv>[0]): Promise<FaultRig> {
  const lab = await startLabEnv(options);
  return {
    lab,
    ...withDownstreams(lab, lab.env),
    send: (ids) => sendBodies(lab, ids.map((id) => msg(id))),
  };
}

/** Ids `<prefix>0` to `<prefix><count - 1>`. */
export function idsOf(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

/** Starts a worker process against the rig; see withWorkerProcesses. */
export type SpawnOnRig = (overrides?: Record<string, string>, argv?: string[]) => WorkerProcess;

/**
 * Runs `fn` on a fresh rig (startRig(`options`)) whose queue holds msg(id) for every id in
 * `options.ids` (default none) and whose enrichment fake answers after `options.enrichDelayMs`
 * (default 0), with `spawn`, which starts a worker process against it (rig.env at LOG_LEVEL info,
 * so its port resolves; `overrides` win). Every worker spawned, then the rig, is closed after
 * `fn`, also when it throws.
 */
export async function withWorkerProcesses(
  options: Parameters<typeof startLabEnv>[0] & { ids?: readonly string[]; enrichDelayMs?: number },
  fn: (rig: FaultRig, spawn: SpawnOnRig) => Promise<void>,
): Promise<void> {
  const rig = await startRig(options);
  rig.enrich.delayMs = options.enrichDelayMs ?? 0;
  const workers: WorkerProcess[] = [];
  const spawn: SpawnOnRig = (overrides = {}, argv) => {
    const worker = spawnWorker(rig.env({ LOG_LEVEL: "info", ...overrides }), argv);
    workers.push(worker);
    return worker;
  };
  try {
    await rig.send(options.ids ?? []);
    await fn(rig, spawn);
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await rig.close();
  }
}

/**
 * Both downstream fakes beside a queue; `env` is `envOf` with their URLs; `close()` ends the
 * fakes, then the queue.
 */
function withDownstreams(
  queue: { close(): Promise<void> },
  envOf: (
    urls: { enrich: string; validator: string },
    overrides?: Record<string, string>,
  ) => Record<string, string>,
): Rig {
  const enrich = startEnrichFake();
  const validator = startValidatorFake();
  const urls = { enrich: enrich.url, validator: validator.url };
  return {
    enrich,
    validator,
    env: (overrides) => envOf(urls, overrides),
    close: async () => {
      await enrich.close();
      await validator.close();
      await queue.close();
    },
  };
}

/** SQS behind the lab's proxy (local_sqs.ts), queue "main", and both downstream fakes. */
export interface SqsRig extends Rig {
  sqs: LocalSqs;
  /** Puts msg(id) for every id on queue "main", as someone else's producer would. */
  send(ids: readonly string[]): Promise<void>;
}

export async function startSqsRig(options?: LocalSqsOptions): Promise<SqsRig> {
  const sqs = await startLocalSqs(options);
  return {
    sqs,
    ...withDownstreams(sqs, (urls, overrides) => workerEnv(sqs.queueUrl("main"), urls, overrides)),
    send: async (ids) => {
      for (const id of ids) await sqs.send("main", msg(id));
    },
  };
}

/** Messages being enriched: their user (`u-<id>`, as `msg` makes it) asked for, not yet accepted. */
export function inWork(ids: readonly string[], enrich: EnrichFake, validator: ValidatorFake) {
  const asked = new Set(enrich.requests.flatMap((r) => r.ids));
  return ids.filter((id) => asked.has(`u-${id}`) && !validator.accepted.has(id));
}

/**
 * Waits until `accepted` messages are accepted and more are being enriched (`inWork`); returns
 * those in work then.
 */
export async function untilAcceptedAndInWork(
  fakes: { enrich: EnrichFake; validator: ValidatorFake },
  ids: readonly string[],
  accepted = 5,
  timeoutMs = 60_000,
): Promise<string[]> {
  const { enrich, validator } = fakes;
  await waitFor(
    () => validator.accepted.size >= accepted && inWork(ids, enrich, validator).length > 0,
    `the worker to accept ${accepted} and be enriching more`,
    timeoutMs,
  );
  return inWork(ids, enrich, validator);
}

/** Waits until the enrichment fake was asked for every id's user: all of them in work at once. */
export async function untilAllInWork(enrich: EnrichFake, ids: readonly string[]): Promise<void> {
  await waitFor(
    () => usersAsked(enrich) === ids.length,
    `all ${ids.length} messages in work`,
    60_000,
  );
}

/** How many distinct users the enrichment fake was asked for. */
export function usersAsked(enrich: EnrichFake): number {
  return new Set(enrich.requests.flatMap((r) => r.ids)).size;
}

/**
 * A fresh in-process worker takes what is left: waits until every id is accepted and the queue is
 * empty, then stops it (also on a timeout). Returns the stopped worker, for its metrics.
 */
export async function finishQueue(
  lab: LabEnv,
  fakes: { enrich: ServedEnrichFake; validator: ServedValidatorFake },
  ids: readonly string[],
  what = "the next worker to finish the queue",
  timeoutMs = 30_000,
): ReturnType<typeof runWorkerUntil> {
  const { enrich, validator } = fakes;
  return await runWorkerUntil(
    lab.env({ enrich: enrich.url, validator: validator.url }),
    async () => validator.accepted.size === ids.length && (await lab.depth()) === 0,
    what,
    timeoutMs,
  );
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
