/** The README's configuration table is the code's: every variable, every default. */
import assert from "node:assert/strict";
import { CONFIG_VARS } from "../src/app/config.ts";

Deno.test("README lists every variable of CONFIG_VARS with its default", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
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
