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
