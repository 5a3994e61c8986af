/**
 * Step 4: a deploy of a binary that exits at once. deploy.sh sees /readyz
 * fail, puts the previous binary back, restarts it and exits 1; /healthz
 * answers again from the previous version.
 */
import { deploy, type StepResult, tail, type VmContext } from "./context.ts";
import { guestHealthz, sshOk } from "./guest.ts";
import { waitFor } from "./exec.ts";

/** A stand-in binary: answers --version like sluice (deploy.sh names it by that), else exits 1 at once. */
export const BROKEN_BINARY = `#!/bin/sh
if [ "$1" = --version ]; then echo "sluice 0.0.0-broken (commit vmtest, built now with sh)"; exit 0; fi
echo "sluice-broken: exiting at once" >&2
exit 1
`;

export async function stepRollback(ctx: VmContext): Promise<StepResult> {
  const g = ctx.guest;
  const before = (await sshOk(g, "readlink /usr/local/bin/sluice")).trim();
  // Long enough for systemd's restart loop to reach its start limit: the rollback must still work.
  const r = await deploy(ctx, ctx.binaries.broken, 20);
  const notes: string[] = [];
  if (r.code !== 1) notes.push(`deploy.sh exited ${r.code}, expected 1`);
  if (!/rolled back; the previous version is ready/.test(r.stdout)) {
    notes.push("deploy.sh did not report a rollback to a ready version", ...tail(r));
  }
  const after = (await sshOk(g, "readlink /usr/local/bin/sluice")).trim();
  if (after !== before) notes.push(`the symlink points at ${after}, not back at ${before}`);
  const healthz = await waitFor(
    async () => ((await guestHealthz(g)) === "200" ? "200" : undefined),
    30,
  );
  if (healthz === undefined) notes.push("/healthz did not come back");
  return {
    ok: notes.length === 0,
    figure:
      `deploy.sh exited ${r.code} after ${r.seconds.toFixed(1)} s; back on ${
        after.split("/").pop()
      }, ` +
      `/healthz ${healthz ?? "down"}`,
    notes,
  };
}
