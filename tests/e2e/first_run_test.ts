/**
 * The first `deno task` on a fresh clone installs node_modules: it must not end in a notice
 * about skipped build scripts (classic-level, dynalite's store, is denied its native build on
 * purpose: the lab and tests run without it).
 */
import assert from "node:assert/strict";
import { keptEnv, REPO } from "../support/command.ts";

Deno.test("first run: a fresh clone's first deno task shows no 'Ignored build scripts' notice", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-first-run-" });
  try {
    for (const file of ["deno.json", "package.json", "deno.lock"]) {
      await Deno.copyFile(`${REPO}/${file}`, `${dir}/${file}`);
    }
    await Deno.mkdir(`${dir}/lab`);
    // A stand-in lab that loads the package with the build script.
    await Deno.writeTextFile(`${dir}/lab/main.ts`, 'import "dynalite";\nconsole.log("lab ran");\n');
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "lab"],
      cwd: dir,
      env: { ...keptEnv(), HOME: Deno.env.get("HOME") ?? "/tmp", NO_COLOR: "1" },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(120_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /lab ran/);
    assert.doesNotMatch(text, /Ignored build scripts|approve-scripts/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
