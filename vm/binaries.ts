/**
 * The three binaries the VM steps deploy: `deno task build`'s dist/sluice,
 * a second build stamped with another version (the upgrade), and a stand-in
 * that exits at once (the rollback).
 */
import { mustExec } from "./exec.ts";
import { BROKEN_BINARY } from "./step_rollback.ts";

export async function buildBinaries(repo: string, runDir: string) {
  const deno = Deno.execPath();
  await mustExec("deno task build", [deno, "task", "build"], { cwd: repo, timeoutSeconds: 300 });
  const pkg = JSON.parse(await Deno.readTextFile(`${repo}/package.json`)) as { version: string };
  const upgradeVersion = `${pkg.version}-vmtest.2`;
  const upgrade = `${runDir}/sluice-upgrade`;
  await mustExec("the upgrade build", [
    deno,
    "run",
    "-A",
    "scripts/build.ts",
    "--out",
    upgrade,
    "--version",
    upgradeVersion,
  ], { cwd: repo, timeoutSeconds: 300 });
  const broken = `${runDir}/sluice-broken`;
  await Deno.writeTextFile(broken, BROKEN_BINARY, { mode: 0o755 });
  return { first: `${repo}/dist/sluice`, upgrade, upgradeVersion, broken };
}
