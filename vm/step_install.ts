/**
 * Step 1, a first install on a fresh VM: deploy.sh refuses a binary built for
 * another machine (the VM's `uname -m`), then installs the env example
 * and does not start the service; with the env file filled in, a second
 * deploy starts it and /healthz answers within the deploy's timeout; the
 * running process holds the unit's sandbox (read from /proc in the guest).
 */
import { deploy, envFile, type StepResult, tail, type VmContext } from "./context.ts";
import { ssh, sshOk } from "./guest.ts";
import { writeEnv } from "./context.ts";
import { hardeningProblems, parseStatus } from "./proc_status.ts";

export async function stepInstall(ctx: VmContext): Promise<StepResult> {
  const g = ctx.guest;
  const notes: string[] = [];
  const refused = await deploy(ctx, ctx.binaries.foreign);
  if (refused.code !== 1 || !/built for aarch64 but .* is x86_64/.test(refused.stderr)) {
    notes.push(`deploy.sh of an arm64 binary exited ${refused.code}`, ...tail(refused));
  }
  const first = await deploy(ctx, ctx.binaries.first);
  if (first.code !== 0 || !first.stdout.includes("did not start it")) {
    return { ok: false, figure: `first deploy exited ${first.code}`, notes: tail(first) };
  }
  const state = await ssh(
    g,
    "cmp -s /etc/sluice/sluice.env /etc/sluice/sluice.env.example && echo env=example; " +
      "stat -c 'mode=%a' /etc/sluice/sluice.env; systemctl is-active sluice.service; true",
  );
  const [envIsExample, mode, active] = state.stdout.trim().split("\n");
  if (envIsExample !== "env=example") {
    notes.push("sluice.env is not the example after the first deploy");
  }
  if (mode !== "mode=600") notes.push(`sluice.env has ${mode}, not mode=600`);
  if (active !== "inactive") {
    notes.push(`the service is ${active} before the env file is filled in`);
  }

  await writeEnv(ctx, envFile(ctx));
  const second = await deploy(ctx, ctx.binaries.first);
  // deploy.sh waits for /readyz (SQS answers, no breaker open), which implies /healthz.
  if (second.code !== 0 || !second.stdout.includes("readyz ok")) {
    return {
      ok: false,
      figure: `second deploy exited ${second.code}`,
      notes: [...notes, ...tail(second)],
    };
  }
  const healthz = (await sshOk(
    g,
    "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9400/healthz",
  )).trim();
  if (healthz !== "200") notes.push(`/healthz answered ${healthz}, not 200`);
  const pid = (await sshOk(g, "systemctl show -p MainPID --value sluice.service")).trim();
  const status = parseStatus(await sshOk(g, `cat /proc/${pid}/status`));
  if (status === undefined) return { ok: false, figure: `no /proc/${pid}/status`, notes };
  notes.push(...hardeningProblems(status));
  return {
    ok: notes.length === 0,
    figure:
      `arm64 binary refused (uname -m); installed, not started until sluice.env was filled in; started, /readyz and /healthz 200, ` +
      `deploy ${second.seconds.toFixed(1)} s (first ${first.seconds.toFixed(1)} s); ` +
      `uid ${status.uid} (dynamic), NoNewPrivs ${status.noNewPrivs}, Seccomp ${status.seccomp}, ` +
      `CapEff ${status.caps.CapEff}, CapBnd ${status.caps.CapBnd}`,
    notes,
  };
}
