/**
 * `deno task vm-test`: deploy.sh and the hardened unit on a booted Debian 12
 * VM with systemd as PID 1 (QEMU TCG). Builds or reuses the cached image,
 * builds the binaries, starts the lab's services on loopback, boots the VM,
 * runs the seven steps and prints one `ok N - …` / `FAIL N - …` line per step
 * with its figures. The VM is powered off and QEMU stopped by PID in a
 * `finally`. Exit 0 when every step passed, 1 when one failed, 2 when this
 * machine cannot run it.
 */
import { ensureImage } from "./image.ts";
import { freePort, startVm, type Vm } from "./qemu.ts";
import { type Guest, ssh, waitForSsh } from "./guest.ts";
import { withTimeout } from "./exec.ts";
import { startLabServices } from "./lab_services.ts";
import { buildBinaries } from "./binaries.ts";
import { preflight } from "./preflight.ts";
import type { VmContext } from "./context.ts";
import { stepInstall } from "./step_install.ts";
import { stepDrain } from "./step_drain.ts";
import { stepJournald } from "./step_journald.ts";
import { stepUpgrade } from "./step_upgrade.ts";
import { stepRollback } from "./step_rollback.ts";
import { stepConfigError } from "./step_config_error.ts";
import { stepReboot } from "./step_reboot.ts";
import { runSteps, type Step } from "./report.ts";

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const CACHE = `${REPO}/.cache`;
/** Slices of the lab's message set: step 2, step 3 (the upgrade), step 6 (after the reboot). */
const SLICES = { drain: [0, 300], upgrade: [300, 1900], reboot: [1900, 2000] } as const;

async function main(): Promise<number> {
  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  const problem = await preflight();
  if (problem) {
    console.error(`vm-test: ${problem}`);
    return 2;
  }
  const runDir = `${CACHE}/vm/runs/${Deno.pid}`;
  await Deno.mkdir(runDir, { recursive: true });
  const lab = await startLabServices(SLICES.reboot[1]);
  let vm: Vm | undefined;
  let guest: Guest | undefined;
  let failed = 1;
  try {
    const [image, binaries] = await Promise.all([
      ensureImage(CACHE, (l) => console.log(`# image: ${l}`)),
      buildBinaries(REPO, runDir),
    ]);
    console.log(
      `# image ${image.built ? "built" : "cached"} (${image.dir.replace(`${REPO}/`, "")}) ` +
        `in ${image.seconds.toFixed(1)} s; binaries built; ${elapsed()}`,
    );
    vm = await startVm({ image, runDir, sshPort: freePort(), forwardPorts: lab.ports });
    guest = { sshPort: vm.sshPort, key: image.key };
    await waitForSsh(guest, 240);
    console.log(`# VM up (QEMU pid ${vm.pid}, ssh 127.0.0.1:${vm.sshPort}); ${elapsed()}`);
    const ctx: VmContext = { repo: REPO, guest, lab, binaries, healthTimeout: 90 };
    const slice = (s: readonly [number, number]) => lab.slice(s[0], s[1]);
    const steps: Step[] = [
      { n: 1, name: "first install", seconds: 300, run: () => stepInstall(ctx) },
      {
        n: 2,
        name: "drain lab messages through guestfwd",
        seconds: 240,
        run: () => stepDrain(ctx, slice(SLICES.drain)),
      },
      {
        n: 7,
        name: "journald keeps every line at info",
        seconds: 60,
        run: () => stepJournald(ctx, slice(SLICES.drain)),
      },
      {
        n: 3,
        name: "upgrade with messages in flight",
        seconds: 360,
        run: () => stepUpgrade(ctx, slice(SLICES.upgrade)),
      },
      { n: 4, name: "broken binary rolled back", seconds: 180, run: () => stepRollback(ctx) },
      {
        n: 5,
        name: "config error stops the restart loop",
        seconds: 150,
        run: () => stepConfigError(ctx),
      },
      {
        n: 6,
        name: "reboot: the unit comes back and resumes",
        seconds: 420,
        run: () => stepReboot(ctx, slice(SLICES.reboot)),
      },
    ];
    failed = await runSteps(steps, elapsed);
  } catch (err) {
    console.log(`FAIL 0 - setup: ${(err as Error).message}`);
  } finally {
    if (vm) await powerOff(vm, guest);
    await lab.close();
    // The overlay holds the run's writes (hundreds of MB): a failed run keeps only its logs.
    await Deno.remove(`${runDir}/overlay.qcow2`).catch(() => {});
    if (failed === 0) await Deno.remove(runDir, { recursive: true }).catch(() => {});
    else if (vm) console.log(`# serial console: ${vm.consoleLog}`);
    console.log(`# total ${elapsed()}`);
  }
  return failed === 0 ? 0 : 1;
}

/** A clean poweroff when the guest answers, then QEMU stopped by PID either way. */
async function powerOff(vm: Vm, guest: Guest | undefined): Promise<void> {
  if (guest) await ssh(guest, "systemctl poweroff", 10);
  await withTimeout(vm.exited, 30);
  await vm.kill(5);
}

if (import.meta.main) Deno.exit(await main());
