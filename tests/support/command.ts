/** Running programs from tests: one captured run, and bun from npm. */
import assert from "node:assert/strict";

export const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
export const BUN_VERSION = "1.4.5";

export interface RunOptions {
  /** Default: the repository. */
  cwd?: string;
  /** Added to the inherited environment, or the whole of it with `clearEnv`. */
  env?: Record<string, string>;
  clearEnv?: boolean;
}

/** Runs `cmd` to completion with stdin closed; returns its exit code and output. */
export async function run(
  cmd: string[],
  options: RunOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    cwd: options.cwd ?? REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
    ...(options.clearEnv ? { clearEnv: true } : {}),
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The bun binary itself (not npx), so signals and timeouts reach the program it runs. */
export async function bunPath(): Promise<string> {
  const out = await run(["npx", "-y", `bun@${BUN_VERSION}`, "-e", "console.log(process.execPath)"]);
  assert.equal(out.code, 0, `cannot run bun@${BUN_VERSION} from npm: ${out.stderr}`);
  return out.stdout.trim().split("\n").at(-1)!;
}
