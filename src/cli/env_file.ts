/**
 * Reads a systemd EnvironmentFile (KEY=VALUE lines), so check-config sees what the unit's
 * worker sees. Pure: the caller reads the file.
 */

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
