/**
 * Step 5: a config error (SQS_MAX_BATCH=abc) makes sluice exit 2 at start;
 * RestartPreventExitStatus=2 keeps systemd from restarting it, and
 * `systemctl status` shows the one-line reason. The env file is then put back
 * (whatever happened, so the reboot step starts from a good config) and the
 * service restarted healthy.
 */
import { envFile, type StepResult, type VmContext, writeEnv } from "./context.ts";
import { type Guest, guestHealthz, ssh, sshOk, unitProps } from "./guest.ts";
import { sleep, waitFor } from "./exec.ts";

export async function stepConfigError(ctx: VmContext): Promise<StepResult> {
  const started = Date.now();
  let result: StepResult;
  try {
    await writeEnv(ctx, envFile(ctx, { SQS_MAX_BATCH: "abc" }));
    result = await observeConfigError(ctx.guest);
  } finally {
    await writeEnv(ctx, envFile(ctx));
  }
  await sshOk(ctx.guest, "systemctl restart sluice.service");
  const back = await waitFor(
    async () => ((await guestHealthz(ctx.guest)) === "200" ? true : undefined),
    60,
  );
  if (back === undefined) {
    result.ok = false;
    (result.notes ??= []).push("/healthz did not come back after the env file was fixed");
  }
  result.figure += `; fixed, /healthz 200 again; ${((Date.now() - started) / 1000).toFixed(1)} s`;
  return result;
}

async function observeConfigError(g: Guest): Promise<StepResult> {
  const restartsBefore = Number((await unitProps(g, ["NRestarts"])).NRestarts);
  await sshOk(g, "systemctl restart sluice.service");
  const failed = await waitFor(async () => {
    const p = await unitProps(g, ["ActiveState", "ExecMainStatus", "Result"]);
    return p.ActiveState === "failed" ? p : undefined;
  }, 60);
  if (failed === undefined) return { ok: false, figure: "the unit did not fail within 60 s" };
  // Past RestartSec (2 s): a restart, if any, would have happened by now.
  await sleep(5000);
  const later = await unitProps(g, ["ActiveState", "NRestarts"]);
  const restarts = Number(later.NRestarts) - restartsBefore;
  const notes: string[] = [];
  if (failed.ExecMainStatus !== "2") notes.push(`exit status ${failed.ExecMainStatus}, expected 2`);
  if (later.ActiveState !== "failed" || restarts !== 0) {
    notes.push(`after 5 s: ${later.ActiveState}, ${restarts} restarts (expected failed, 0)`);
  }
  const status = (await ssh(g, "systemctl status sluice.service --no-pager -n 10")).stdout;
  const reason = status.split("\n").find((l) => l.includes("SQS_MAX_BATCH"))?.replace(
    /^.*?\]: /,
    "",
  );
  if (reason === undefined) notes.push("systemctl status does not name SQS_MAX_BATCH");
  return {
    ok: notes.length === 0,
    figure: `exit ${failed.ExecMainStatus} (${failed.Result}), ${restarts} restarts in 5 s, ` +
      `systemctl status: "${reason?.trim() ?? "?"}"`,
    notes,
  };
}
