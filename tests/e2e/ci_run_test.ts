/**
 * .ci/run installs exactly what deno.lock pins: `deno install --frozen` fails instead of
 * resolving anew, and the lock is complete enough for a fresh clone to pass it.
 */
import assert from "node:assert/strict";
import { REPO } from "../support/command.ts";

Deno.test("ci run: every deno install in .ci/run is --frozen", async () => {
  const script = await Deno.readTextFile(`${REPO}/.ci/run`);
  const installs = script.split("\n").filter((line) =>
    /\binstall\b/.test(line) && /DENO|deno/.test(line) && !line.trim().startsWith("#")
  );
  assert.ok(installs.length >= 1, "no deno install found");
  for (const line of installs) assert.match(line, /install --frozen\b/, line.trim());
});

Deno.test("ci run: a fresh clone's manifest and lock pass deno install --frozen unchanged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_frozen_" });
  try {
    for (const file of ["deno.json", "deno.lock", "package.json"]) {
      await Deno.copyFile(`${REPO}/${file}`, `${dir}/${file}`);
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["install", "--frozen"],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `deno install --frozen failed:\n${stderr}`);
    assert.equal(
      await Deno.readTextFile(`${dir}/deno.lock`),
      await Deno.readTextFile(`${REPO}/deno.lock`),
      "the lock was rewritten",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
