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

/** TLS trust and proxies come from the environment on these machines: a child started with
 * `clearEnv` keeps them, or it cannot fetch a package. */
const KEPT =
  /^(PATH|SSL_CERT_FILE|SSL_CERT_DIR|DENO_CERT|DENO_TLS_CA_STORE|NODE_EXTRA_CA_CERTS|CURL_CA_BUNDLE|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy|NPM_CONFIG_[A-Z_]+|npm_config_[a-z_]+)$/;

/** The parent's PATH, TLS and proxy variables: the base of a child's cleared environment. */
export function keptEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(Deno.env.toObject()).filter(([k]) => KEPT.test(k)));
}

/** A port on 127.0.0.1 that was free a moment ago (bound, then closed): nothing listens there. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
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
    ...(options.env || options.clearEnv
      ? { env: { ...(options.clearEnv ? keptEnv() : {}), ...options.env } }
      : {}),
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

/** `promtool check metrics` on an exposition text: its exit code and what it said. */
export async function promtoolCheckMetrics(text: string): Promise<{ code: number; out: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const decode = new TextDecoder();
  return { code: out.code, out: decode.decode(out.stdout) + decode.decode(out.stderr) };
}
