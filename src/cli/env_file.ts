/**
 * Reads a systemd EnvironmentFile (KEY=VALUE lines), so check-config sees what the unit's
 * worker sees.
 */
import type { CliDeps } from "./cli_deps.ts";

/** The variables in `text`, or the problems found (line numbers are 1-based). */
export function parseEnvFile(text: string): { env: Record<string, string>; problems: string[] } {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").trim();
    // systemd treats lines starting with # or ; as comments.
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) {
      problems.push(`line ${i + 1}: expected KEY=VALUE, got ${JSON.stringify(line.slice(0, 60))}`);
      continue;
    }
    env[match[1]!] = unquote(match[2]!);
  }
  return { env, problems };
}

function unquote(raw: string): string {
  const quote = raw[0];
  if ((quote === '"' || quote === "'") && raw.length >= 2 && raw.endsWith(quote)) {
    const inner = raw.slice(1, -1);
    // Inside double quotes systemd honours backslash escapes of the quote and the backslash.
    return quote === '"' ? inner.replace(/\\(["\\])/g, "$1") : inner;
  }
  return raw;
}

/**
 * The variables a command works with: the process environment, or with `--env-file` the file's
 * variables only (what systemd gives the worker); the exit code 2 after printing why not.
 */
export async function readEnv(
  envFile: string | undefined,
  deps: CliDeps,
): Promise<Record<string, string | undefined> | number> {
  if (envFile === undefined) return deps.env;
  let text: string;
  try {
    text = await deps.readTextFile(envFile);
  } catch (error) {
    deps.err(`sluice: cannot read --env-file ${envFile}: ${(error as Error).message}`);
    return 2;
  }
  const parsed = parseEnvFile(text);
  for (const p of parsed.problems) deps.err(`sluice: ${envFile}: ${p}`);
  return parsed.problems.length > 0 ? 2 : parsed.env;
}
