/**
 * Step 6: a reboot of the VM. The enabled unit starts at boot, /healthz
 * answers, and the worker drains a new slice of messages.
 */
import type { OutgoingMessage } from "../lab/generator.ts";
import type { StepResult, VmContext } from "./context.ts";
import { guestHealthz, ssh, sshOk, waitForSsh } from "./guest.ts";
import { waitFor } from "./exec.ts";
import { describeSlice, sliceProblems } from "./step_drain.ts";

export async function stepReboot(
  ctx: VmContext,
  slice: readonly OutgoingMessage[],
): Promise<StepResult> {
  const g = ctx.guest;
  const started = Date.now();
  const bootId = (await sshOk(g, "cat /proc/sys/kernel/random/boot_id")).trim();
  await ssh(g, "systemctl reboot", 15); // the connection may drop before it answers
  await waitForSsh(g, 240, bootId);
  const sshBack = (Date.now() - started) / 1000;
  const healthy = await waitFor(
    async () => ((await guestHealthz(g)) === "200" ? true : undefined),
    120,
  );
  const upSeconds = (Date.now() - started) / 1000;
  if (healthy === undefined) {
    const status = (await ssh(g, "systemctl status sluice.service --no-pager -n 5")).stdout;
    return {
      ok: false,
      figure: "sluice did not come back after the reboot",
      notes: status.split("\n"),
    };
  }
  const startedAt = Date.now();
  await ctx.lab.send(slice);
  const r = await ctx.lab.drained(slice, startedAt, 150);
  const notes = sliceProblems(r);
  return {
    ok: notes.length === 0,
    figure:
      `ssh back after ${sshBack.toFixed(1)} s, /healthz 200 after ${upSeconds.toFixed(1)} s; ` +
      `${slice.length} messages: ${describeSlice(r)}`,
    notes,
  };
}
