/**
 * The three binaries the VM steps deploy: `deno task build`'s dist/sluice,
 * a second build stamped with another version (the upgrade), and a stand-in
 * that exits at once (the rollback), and an arm64 header deploy.sh must refuse.
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
  const foreign = `${runDir}/sluice-arm64`;
  await Deno.writeFile(foreign, foreignElfHeader(), { mode: 0o755 });
  return { first: `${repo}/dist/sluice`, upgrade, upgradeVersion, broken, foreign };
}

/** The 64-byte header of an arm64 Linux executable, nothing more: deploy.sh must refuse it. */
export function foreignElfHeader(): Uint8Array {
  const header = new Uint8Array(64);
  header.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // ELF, 64-bit, little-endian, version 1
  header.set([2, 0, 0xb7, 0], 16); // e_type EXEC, e_machine AArch64
  return header;
}
