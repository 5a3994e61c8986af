/**
 * The runtime shim: the only file under src/ that touches `Deno`, `Bun` or `process`. sluice runs under Deno and, when
 * `deno compile` cannot fetch its runtime, as a `bun build --compile` binary
 * (README, Deploy), so each function uses `Deno` when present and the
 * Node-compatible global `process` otherwise. Nothing runs at import time.
 *
 * No `node:` module is imported: under Deno that loads the Node compatibility layer, which
 * made the worker ~5 % slower per message and ~6 MB larger (bench/RESULTS.md).
 */
import { systemClock } from "../lib/clock.ts";
import { type ByteConn, serveHttp1 } from "../lib/http1_server.ts";
import { http1Client, proxyVariable } from "../lib/http1_client.ts";
import { globalFetch } from "../lib/guarded_fetch.ts";
import type { Sha256 } from "../adapters/sigv4.ts";

/** Signals the worker reacts to. */
export type RuntimeSignal = "SIGTERM" | "SIGINT" | "SIGHUP";

/** Which runtime is executing us; "node" only for completeness (tests under plain Node). */
export type RuntimeName = "deno" | "bun" | "node";

/** Process memory in bytes. */
export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
}

/** CPU time consumed by this process so far, in microseconds. */
export interface CpuUsage {
  user: number;
  system: number;
}

// Looked up on each call (not cached at import) so a test can stub it and so
// importing this module stays free of side effects.
function deno(): typeof Deno | undefined {
  return (globalThis as { Deno?: typeof Deno }).Deno;
}

/** The parts of Node's `process` used here (Bun and Node have it as a global). */
interface NodeProcess {
  versions: Record<string, string | undefined>;
  env: Record<string, string | undefined>;
  argv: string[];
  exit(code: number): never;
  on(signal: string, fn: () => void): void;
  off(signal: string, fn: () => void): void;
  memoryUsage(): MemoryUsage;
  cpuUsage(): CpuUsage;
  stdout: { write(text: string): void; isTTY?: boolean };
  stderr: { write(text: string): void; isTTY?: boolean };
  stdin: { isTTY?: boolean };
  execPath: string;
  pid: number;
}

/** Node's `process`: used outside Deno only (but for cpuUsage() on a Deno without its own). */
function nodeProcess(): NodeProcess {
  return (globalThis as unknown as { process: NodeProcess }).process;
}

/** "deno", "bun" or "node". */
export function runtimeName(): RuntimeName {
  if (deno()) return "deno";
  if ("Bun" in globalThis) return "bun";
  return "node";
}

/** Version of the executing runtime, e.g. "2.9.6"; "unknown" if it does not say. */
export function runtimeVersion(): string {
  const d = deno();
  if (d) return d.version.deno;
  const versions = nodeProcess().versions;
  return versions["bun"] ?? versions["node"] ?? "unknown";
}

/** A copy of the environment (a snapshot: later changes are not reflected). */
export function env(): Record<string, string | undefined> {
  const d = deno();
  if (d) return d.env.toObject();
  return { ...nodeProcess().env };
}

/** Command-line arguments after the program (and, when run from source, the script) name. */
export function args(): string[] {
  const d = deno();
  if (d) return [...d.args];
  // Both `bun run x.ts a` and a bun-compiled binary put [runtime, script] first.
  return nodeProcess().argv.slice(2);
}

/** Ends the process now with `code`. */
export function exit(code: number): never {
  const d = deno();
  if (d) d.exit(code);
  return nodeProcess().exit(code);
}

/**
 * Calls `fn` every time the process receives `signal`. Registering a handler
 * replaces the default action (termination). Returns a function that removes it.
 */
export function onSignal(signal: RuntimeSignal, fn: () => void): () => void {
  const d = deno();
  if (d) {
    d.addSignalListener(signal, fn);
    return () => d.removeSignalListener(signal, fn);
  }
  const p = nodeProcess();
  p.on(signal, fn);
  return () => p.off(signal, fn);
}

/**
 * Reads a UTF-8 file. A missing file rejects with an error whose `code` is
 * "ENOENT" under both runtimes, which is what callers should test.
 */
export function readTextFile(path: string): Promise<string> {
  const d = deno();
  if (d) return d.readTextFile(path);
  return import("node:fs/promises").then((fs) => fs.readFile(path, { encoding: "utf8" }));
}

/** The user's home directory from HOME (USERPROFILE on Windows); undefined when unset, e.g. under systemd's DynamicUser without a home. */
export function homeDir(): string | undefined {
  const d = deno();
  const get = (name: string) => d ? d.env.get(name) : nodeProcess().env[name];
  const home = get("HOME") || get("USERPROFILE");
  return home || undefined;
}

/** Resident set size and V8/JSC heap, in bytes. */
export function memoryUsage(): MemoryUsage {
  const d = deno();
  const m = d ? d.memoryUsage() : nodeProcess().memoryUsage();
  return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external };
}

/**
 * CPU time used by this process, in microseconds: `Deno.cpuUsage()` under Deno (present in the
 * pinned Deno, though not in its published types), `process.cpuUsage()` elsewhere.
 */
export function cpuUsage(): CpuUsage {
  const d = deno() as { cpuUsage?: () => CpuUsage } | undefined;
  // A Deno without it falls back to its global `process`, which loads the Node layer.
  const c = typeof d?.cpuUsage === "function" ? d.cpuUsage() : nodeProcess().cpuUsage();
  return { user: c.user, system: c.system };
}

const encoder = new TextEncoder();

/** Writes all of `text` to fd 1 or 2, synchronously under Deno; no newline is added. */
function write(stream: "stdout" | "stderr", text: string): void {
  const d = deno();
  if (d) {
    const bytes = encoder.encode(text);
    // writeSync may write fewer bytes than asked (pipes): loop until done.
    let offset = 0;
    while (offset < bytes.length) offset += d[stream].writeSync(bytes.subarray(offset));
    return;
  }
  nodeProcess()[stream].write(text);
}

/** Writes `text` to stdout exactly as given (no newline is added). */
export function writeStdout(text: string): void {
  write("stdout", text);
}

/** Writes `text` to stderr exactly as given (no newline is added). */
export function writeStderr(text: string): void {
  write("stderr", text);
}

/** Whether stdout is a terminal (for the live progress line and LOG_FORMAT hints). */
export function stdoutIsTerminal(): boolean {
  const d = deno();
  if (d) return d.stdout.isTerminal();
  return nodeProcess().stdout.isTTY === true;
}

/** Whether stderr is a terminal (for a command's live status line). */
export function stderrIsTerminal(): boolean {
  const d = deno();
  if (d) return d.stderr.isTerminal();
  return nodeProcess().stderr.isTTY === true;
}

/**
 * Asks a person at the terminal and returns the line typed, or undefined when stdin is not a
 * terminal (a script, a pipe, systemd): destructive commands then need their --yes flag.
 */
export function askTerminal(question: string): string | undefined {
  const d = deno();
  const interactive = d ? d.stdin.isTerminal() : nodeProcess().stdin.isTTY === true;
  if (!interactive) return undefined;
  const ask = (globalThis as { prompt?: (message: string) => string | null }).prompt;
  return ask ? (ask(question) ?? "") : undefined;
}

/** Path of the running executable: the compiled binary, or the deno/bun binary when run from source. */
export function execPath(): string {
  const d = deno();
  if (d) return d.execPath();
  return nodeProcess().execPath;
}

/** This process's id. */
export function pid(): number {
  const d = deno();
  if (d) return d.pid;
  return nodeProcess().pid;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** Bun's native hasher, as much of it as signing uses. */
interface BunHasher {
  update(data: string): BunHasher;
  digest(): Uint8Array;
  digest(encoding: "hex"): string;
}
type BunHasherClass = new (algorithm: "sha256", hmacKey?: Uint8Array) => BunHasher;

/**
 * The runtime's own SHA-256 for signing AWS requests, where one is native and synchronous:
 * Bun's hashes a delete batch's body in 3.8 µs, where @noble/hashes under JavaScriptCore took
 * 63 µs to sign the batch (docs/performance.md). Undefined under Deno, whose only synchronous
 * native hash is node:crypto's (this shim loads no node: module): @noble/hashes is used there.
 */
export function nativeSha256(): Sha256 | undefined {
  const bun = (globalThis as { Bun?: { CryptoHasher?: BunHasherClass } }).Bun;
  const Hasher = bun?.CryptoHasher;
  if (deno() || !Hasher) return undefined;
  return {
    hex: (text) => new Hasher("sha256").update(text).digest("hex"),
    hmac: (key, text) => new Hasher("sha256", key).update(text).digest(),
    keyed: (key) => (text) => new Hasher("sha256", key).update(text).digest("hex"),
  };
}

/**
 * The worker's fetch and a closer for its idle connections. Under Deno, plain-http requests go
 * over lib/http1_client.ts's kept-alive connections (about 0.4× the CPU of Deno's fetch per
 * request, docs/performance.md) unless a proxy variable is set, which only Deno's fetch honours;
 * everything else, and every request under Bun, uses the runtime's fetch.
 */
export function workerTransport(
  environment: Record<string, string | undefined>,
): { fetch: typeof fetch; close(): void } {
  const d = deno();
  if (!d || proxyVariable(environment) !== undefined) {
    return { fetch: globalFetch, close() {} };
  }
  return http1Client({
    connect: async (hostname, port): Promise<ByteConn> => {
      const conn = await d.connect({ hostname, port });
      conn.setNoDelay(true);
      return conn;
    },
    fallback: globalFetch,
    monotonic: systemClock.monotonic,
  });
}

/** Seconds a health-server connection may sit without a complete request (Bun's unit). */
const IDLE_TIMEOUT_SECONDS = 10;

/**
 * Serves `handler` for the health and metrics endpoints; returns a closer. A connection that
 * sends partial headers, or trickles them, is closed within seconds: under Bun by its
 * `idleTimeout`; under Deno, whose Deno.serve has no such option, by lib/http1_server.ts on a
 * plain TCP listener (at most 10 s idle, 5 s from a request's first byte to its last header).
 */
export function serve(
  hostname: string,
  port: number,
  handler: FetchHandler,
): { port: number; close(): Promise<void> } {
  const g = globalThis as {
    Deno?: typeof Deno;
    Bun?: {
      serve(o: {
        hostname: string;
        port: number;
        fetch: FetchHandler;
        idleTimeout: number;
        maxRequestBodySize: number;
      }): {
        port: number;
        stop(force?: boolean): Promise<void> | void;
      };
    };
  };
  if (g.Deno) {
    const listener = g.Deno.listen({ hostname, port });
    const { port: bound } = listener.addr;
    const host = listener.addr.hostname.includes(":")
      ? `[${listener.addr.hostname}]`
      : listener.addr.hostname;
    const server = serveHttp1(listener, handler, {
      origin: `http://${host}:${bound}`,
      clock: systemClock,
      idleTimeoutMs: IDLE_TIMEOUT_SECONDS * 1000,
    });
    return { port: bound, close: () => server.close() };
  }
  if (g.Bun) {
    const server = g.Bun.serve({
      hostname,
      port,
      fetch: handler,
      idleTimeout: IDLE_TIMEOUT_SECONDS,
      maxRequestBodySize: 64 * 1024,
    });
    return { port: server.port, close: async () => void (await server.stop(true)) };
  }
  throw new Error("Cannot serve HTTP: received a runtime without a server, expected Deno or Bun");
}
