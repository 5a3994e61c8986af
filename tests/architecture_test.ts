/**
 * The layers of docs/architecture.md hold: imports under src/ point down
 * (main → cli → app → flow → domain | adapters → lib), and only the runtime
 * shim touches `Deno` or `Bun`; no file imports a `node:` module. A fixture with an upward import proves the
 * check can fail.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { REPO } from "./support/command.ts";

const RANK: Record<string, number> = {
  "main.ts": 6,
  cli: 5,
  app: 4,
  flow: 3,
  domain: 2,
  adapters: 2,
  lib: 1,
};
const SHIM = "cli/runtime.ts";

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...await sourceFiles(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The layer of a path relative to src/ ("flow/settle.ts" → "flow"). */
function layerOf(rel: string): string {
  return rel.includes("/") ? rel.slice(0, rel.indexOf("/")) : rel;
}

/** Every rule broken under `srcDir`, one line each. */
export async function violations(srcDir: string): Promise<string[]> {
  const found: string[] = [];
  for (const file of await sourceFiles(srcDir)) {
    const rel = relative(srcDir, file);
    const from = layerOf(rel);
    if (RANK[from] === undefined) found.push(`${rel}: not in a layer folder`);
    const text = await readFile(file, "utf8");
    for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
      const target = relative(srcDir, resolve(dirname(file), spec!));
      if (target.startsWith("..")) {
        if (!target.endsWith("package.json")) found.push(`${rel}: imports ${spec} outside src/`);
        continue;
      }
      const to = layerOf(target);
      const same = to === from;
      const down = (RANK[to] ?? 99) < (RANK[from] ?? 0);
      if (!same && !down) found.push(`${rel}: imports ${target} (${to} is not below ${from})`);
    }
    // Under Deno a node: module loads the Node compatibility layer: slower and larger
    // (bench/RESULTS.md). The shim may load one lazily for Bun.
    if (/^import[^;]*from\s*"node:/m.test(text)) found.push(`${rel}: imports a node: module`);
    const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    if (rel !== SHIM && /\b(Deno|Bun)\s*[.[]/.test(code)) {
      found.push(`${rel}: reaches Deno.* or Bun.* outside ${SHIM}`);
    }
  }
  return found.sort();
}

Deno.test("architecture: src/ imports point down the layers, none is a node: module, only the shim touches the runtime", async () => {
  assert.deepEqual(await violations(join(REPO, "src")), []);
});

Deno.test("architecture: the check names an upward import, a node: import and a runtime call in a fixture", async () => {
  const found = await violations(join(REPO, "tests/fixtures/architecture/src"));
  assert.deepEqual(found, [
    "lib/upward.ts: imports a node: module",
    "lib/upward.ts: imports flow/stage.ts (flow is not below lib)",
    "lib/upward.ts: reaches Deno.* or Bun.* outside cli/runtime.ts",
  ]);
});
