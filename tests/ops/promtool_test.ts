/**
 * The alert rules and the scrape example pass promtool (Debian's `prometheus`
 * package; .ci/run installs it), and the rules' unit tests pass.
 */
import assert from "node:assert/strict";
import { REPO } from "../support/command.ts";

async function promtool(...args: string[]): Promise<{ code: number; out: string }> {
  const result = await new Deno.Command("promtool", {
    args,
    cwd: `${REPO}/ops/prometheus`,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: result.code, out: text.decode(result.stdout) + text.decode(result.stderr) };
}

Deno.test("promtool: check rules: the alert rules are valid", async () => {
  const { code, out } = await promtool("check", "rules", "rules.yml");
  assert.equal(code, 0, out);
  assert.match(out, /SUCCESS: 7 rules found/);
});

Deno.test("promtool: test rules: every alert fires when it should and not in a near miss", async () => {
  const { code, out } = await promtool("test", "rules", "rules_test.yml");
  assert.equal(code, 0, out);
  assert.match(out, /SUCCESS/);
});

Deno.test("promtool: check config: the scrape example is valid", async () => {
  const { code, out } = await promtool("check", "config", "prometheus.yml");
  assert.equal(code, 0, out);
});

Deno.test("promtool: every alert waits a for: and links its runbook section by absolute URL", async () => {
  const rules = await Deno.readTextFile(`${REPO}/ops/prometheus/rules.yml`);
  const runbook = await Deno.readTextFile(`${REPO}/ops/RUNBOOK.md`);
  const anchors = new Set(
    [...runbook.matchAll(/^## (Sluice\w+)$/gm)].map((m) => m[1]!.toLowerCase()),
  );
  const alerts = rules.split(/^ {6}- alert: /m).slice(1);
  assert.equal(alerts.length, 7);
  for (const block of alerts) {
    const name = block.split("\n")[0]!;
    assert.match(block, /^ {8}for: \d+m$/m, `${name} has a for:`);
    assert.doesNotMatch(block, /^ +runbook:/m, `${name}: runbook_url, not a relative runbook:`);
    const url = block.match(/^ {10}runbook_url: (\S+)$/m)?.[1];
    assert.match(url ?? "", /^https:\/\/[^/]+\/.*\/ops\/RUNBOOK\.md#sluice\w+$/, name);
    const anchor = url!.split("#")[1]!;
    assert.equal(anchor, name.toLowerCase(), `${name} links its own section`);
    assert.ok(anchors.has(anchor), `ops/RUNBOOK.md has a section for ${name}`);
  }
});
