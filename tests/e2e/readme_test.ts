/** The README's configuration table is the code's: every variable, every default. */
import assert from "node:assert/strict";
import { CONFIG_VARS } from "../../src/app/config.ts";

Deno.test("README: lists every variable of CONFIG_VARS with its default", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const rows = new Map<string, string>();
  for (const match of readme.matchAll(/^\| `([A-Z0-9_]+)` +\| ([^|]+?) *\|/gm)) {
    rows.set(match[1]!, match[2]!.trim());
  }
  for (const v of CONFIG_VARS) {
    assert.ok(rows.has(v.name), `README's table misses ${v.name}`);
    const expected = v.default === undefined ? "—" : `\`${v.default}\``;
    assert.equal(rows.get(v.name), expected, `README's default for ${v.name}`);
  }
  assert.equal(rows.size, CONFIG_VARS.length, "README lists variables the code does not read");
});

/** Lines outside fenced code blocks. */
function prose(text: string): Array<[number, string]> {
  let fenced = false;
  const out: Array<[number, string]> = [];
  text.split("\n").forEach((line, i) => {
    if (line.startsWith("```")) fenced = !fenced;
    else if (!fenced) out.push([i + 1, line]);
  });
  return out;
}

Deno.test("README: no line over 120 characters outside code blocks", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const long = prose(readme).filter(([, line]) => line.length > 120).map(([n]) => n);
  assert.deepEqual(long, [], `README lines over 120 characters: ${long.join(", ")}`);
});

Deno.test("README: reads top-down: what, commands, deploy, watch, DLQ, configuration", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
  const order = [
    "The two commands",
    "Deploy to the VM",
    "Watch it",
    "Operate the dead-letter queue",
    "Configuration",
  ];
  assert.deepEqual(headings.filter((h) => order.includes(h!)), order);
  assert.match(readme, /task test .*deno test -P/);
  assert.match(readme, /aws sqs start-message-move-task/);
  assert.match(readme, /`dlq redrive`:.*`SendMessage` on the main queue/s);
  assert.match(readme, /`PurgeQueue`/);
  assert.match(readme, /SSO, `credential_process`.*container credentials are not\s+supported/s);
  for (const doc of ["docs/outcomes.md", "docs/failure-handling.md", "docs/architecture.md"]) {
    assert.ok(readme.includes(`(${doc})`), `README links ${doc}`);
  }
});

Deno.test("README: files users edit or read carry no internal wording", async () => {
  const { helpText } = await import("../../src/cli/help.ts");
  const texts: Array<[string, string]> = [
    ["README.md", await Deno.readTextFile(new URL("../../README.md", import.meta.url))],
  ];
  for (const dir of ["systemd", "ops"]) {
    try {
      for await (const entry of Deno.readDir(new URL(`../../${dir}/`, import.meta.url))) {
        if (!entry.isFile) continue;
        const url = new URL(`../../${dir}/${entry.name}`, import.meta.url);
        texts.push([`${dir}/${entry.name}`, await Deno.readTextFile(url)]);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  for (
    const topic of ["main", "check-config", "dlq", "stats", "peek", "redrive", "purge"] as const
  ) {
    texts.push([`--help ${topic}`, helpText(topic)]);
  }
  for (const [name, text] of texts) {
    assert.doesNotMatch(text, /contract section|seeds\/0|§\d/i, name);
  }
});
