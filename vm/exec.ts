/**
 * Running host programs for the VM test: every command has a deadline, after
 * which it is killed by PID (its own process, never by name).
 */

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** true when the deadline killed it */
  timedOut: boolean;
  seconds: number;
}

export interface ExecOptions {
  /** kill the command after this long, default 120 s */
  timeoutSeconds?: number;
  cwd?: string;
  env?: Record<string, string>;
  /** written to the command's stdin, then closed; default: stdin closed */
  stdin?: string;
  /** called with each stdout line as it arrives */
  onLine?: (line: string) => void;
}

/** Runs `cmd` to completion or to its deadline; never throws for a non-zero exit. */
export async function exec(cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
  const [program, ...args] = cmd;
  if (program === undefined) throw new Error("exec: empty command");
  const started = performance.now();
  const child = new Deno.Command(program, {
    args,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin)).catch(() => {});
    await writer.close().catch(() => {});
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, (options.timeoutSeconds ?? 120) * 1000);
  try {
    const [stdout, stderr, status] = await Promise.all([
      collect(child.stdout, options.onLine),
      collect(child.stderr),
      child.status,
    ]);
    return {
      code: status.code,
      stdout,
      stderr,
      timedOut,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** A stream's whole text, handing each complete line to `onLine` as it arrives. */
async function collect(stream: ReadableStream<Uint8Array>, onLine?: (line: string) => void) {
  let text = "";
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    if (!onLine) continue;
    const lines = (pending + chunk).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  }
  if (onLine && pending !== "") onLine(pending);
  return text;
}

/** Runs `cmd` and throws with its last output lines unless it exits 0. */
export async function mustExec(
  what: string,
  cmd: string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  const result = await exec(cmd, options);
  if (result.code !== 0 || result.timedOut) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(-15).join("\n");
    throw new Error(
      `${what} ${
        result.timedOut
          ? `timed out after ${options.timeoutSeconds ?? 120} s`
          : `exited ${result.code}`
      }:\n${tail}`,
    );
  }
  return result;
}

/** Sleeps `ms`; the VM test's only clock wait. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` every `everyMs` until it returns a value or `timeoutSeconds` pass (then undefined). */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  timeoutSeconds: number,
  everyMs = 1000,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await sleep(everyMs);
  }
}

/** `promise`'s value, or undefined once `seconds` pass first (the timer is cleared either way). */
export async function withTimeout<T>(promise: Promise<T>, seconds: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), seconds * 1000);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
