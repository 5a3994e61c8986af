/**
 * The worker as a child process: started directly (not through npx or a
 * shell) so SIGTERM and SIGKILL reach it, its output appended to the run's
 * log file, the last lines kept for the summary.
 */
import { trackChild } from "./children.ts";

/** Serialized appends to one log file, shared by the worker's two streams and the lab's own notes. */
export interface LogSink {
  write(data: string | Uint8Array): Promise<void>;
}

export function createLogSink(file: Deno.FsFile): LogSink {
  let chain: Promise<void> = Promise.resolve();
  const encoder = new TextEncoder();
  return {
    write(data) {
      const bytes = typeof data === "string" ? encoder.encode(data) : data;
      chain = chain.then(async () => {
        for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
      });
      return chain;
    },
  };
}

export interface WorkerProcessOptions {
  /** argv; the first element is the executable */
  cmd: string[];
  cwd: string;
  /** the complete environment (the lab filters the parent's) */
  env: Record<string, string>;
  log: LogSink;
  /** lines of output kept for error messages, default 20 */
  tailLines?: number;
}

export interface WorkerProcess {
  readonly pid: number;
  /** when it was spawned (ms) */
  readonly startedAt: number;
  /** true once the process has exited */
  readonly exited: boolean;
  readonly status: Promise<Deno.CommandStatus>;
  /** the last lines of output (stdout and stderr) */
  tail(): string[];
  /** sends a signal and waits for the exit and the end of its output */
  kill(signal: Deno.Signal): Promise<Deno.CommandStatus>;
  /** SIGTERM, then SIGKILL if it has not exited within timeoutSeconds */
  stop(
    timeoutSeconds: number,
  ): Promise<{ code: number; signal: Deno.Signal | null; forced: boolean }>;
}

export function spawnWorker(options: WorkerProcessOptions): WorkerProcess {
  const [exe, ...args] = options.cmd;
  if (!exe) throw new Error("empty worker command");
  const child = new Deno.Command(exe, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  trackChild(child);
  const startedAt = Date.now();
  const keep = options.tailLines ?? 20;
  const lines: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      await options.log.write(chunk);
      partial += decoder.decode(chunk, { stream: true });
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) if (line.trim()) lines.push(line.slice(0, 500));
      if (lines.length > keep) lines.splice(0, lines.length - keep);
    }
    if (partial.trim()) lines.push(partial.slice(0, 500));
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await pumps.catch(() => undefined);
    return s;
  });
  const signal = (sig: Deno.Signal) => {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  };
  return {
    pid: child.pid,
    startedAt,
    get exited() {
      return exited;
    },
    status,
    tail: () => [...lines],
    kill: (sig) => {
      signal(sig);
      return status;
    },
    stop: async (timeoutSeconds) => {
      signal("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutSeconds * 1000);
      });
      const first = await Promise.race([status, timedOut]);
      clearTimeout(timer);
      if (first === "timeout") {
        signal("SIGKILL");
        const s = await status;
        return { code: s.code, signal: s.signal, forced: true };
      }
      return { code: first.code, signal: first.signal, forced: false };
    },
  };
}
