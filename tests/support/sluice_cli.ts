/** Runs the real entry (`deno run src/main.ts ...`) as a child, as an operator would. */
import { run } from "./command.ts";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `sluice ARGS` with exactly `env` (plus PATH, TLS and proxy variables), stdin closed. */
export async function sluice(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const started = Date.now();
  const out = await run([Deno.execPath(), "run", "-A", "src/main.ts", ...args], {
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
  });
  return { ...out, ms: Date.now() - started };
}

/** A stack trace line, which an operator should never see. */
export const STACK_TRACE = /^\s+at .+:\d+:\d+\)?$/m;
