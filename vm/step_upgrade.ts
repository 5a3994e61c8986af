/**
 * Step 3: an upgrade (a second build, another version string) deployed while
 * messages are in flight: a first part of the slice keeps the worker busy, the
 * rest lands in one burst as the install switches the symlink (seconds before
 * the restart). Nothing is lost; duplicate submissions stay within the peak of
 * submissions on the wire during the deploy; the stop took less than
 * TimeoutStopSec; the journal shows systemd's Stopping/Stopped lines.
 */
import type { OutgoingMessage } from "../lab/generator.ts";
import { deploy, type StepResult, tail, type VmContext } from "./context.ts";
import { sleep, waitFor } from "./exec.ts";
import { sshOk, unitProps } from "./guest.ts";
import { inFlightAtStop, parseTimespan, stopSeconds } from "./journal.ts";
import { describeSlice, sliceProblems } from "./step_drain.ts";

export async function stepUpgrade(
  ctx: VmContext,
  slice: readonly OutgoingMessage[],
): Promise<StepResult> {
  const g = ctx.guest;
  const since = Number((await sshOk(g, "date +%s")).trim());
  const startedAt = Date.now();
  const head = slice.slice(0, 100);
  await ctx.lab.send(head);
  await waitFor(
    async () => ((await ctx.lab.judge(head, startedAt)).accepted >= 30 ? true : undefined),
    60,
    300,
  );
  let burst: Promise<number> = Promise.resolve(0);
  let peakOnWire = 0;
  let deploying = true;
  const sampling = (async () => {
    while (deploying) {
      peakOnWire = Math.max(peakOnWire, ctx.lab.submissionsOnTheWire());
      await sleep(50);
    }
  })();
  const r = await deploy(ctx, ctx.binaries.upgrade, ctx.healthTimeout, (line) => {
    // The remote install prints this right before daemon-reload and the restart.
    if (line.startsWith("switched ")) burst = ctx.lab.send(slice.slice(head.length));
  }).finally(() => (deploying = false));
  await sampling;
  await burst;
  const drained = await ctx.lab.drained(slice, startedAt, 180);
  const notes = sliceProblems(drained, peakOnWire);
  if (r.code !== 0) notes.push(`deploy.sh exited ${r.code}`, ...tail(r));
  const journal = await sshOk(
    g,
    `journalctl -u sluice.service --since @${since} --no-pager -o short-unix`,
    60,
  );
  const stop = stopSeconds(journal);
  const held = inFlightAtStop(journal);
  const timeout = parseTimespan((await unitProps(g, ["TimeoutStopUSec"])).TimeoutStopUSec ?? "");
  if (stop === undefined) notes.push("no Stopping/Stopped sluice lines in journalctl -u sluice");
  else if (!(stop < timeout)) {
    notes.push(`the stop took ${stop.toFixed(1)} s, TimeoutStopSec is ${timeout} s`);
  }
  const version = (await sshOk(g, "/usr/local/bin/sluice --version")).trim();
  const expected = ctx.binaries.upgradeVersion;
  if (!version.startsWith(`sluice ${expected} `)) notes.push(`running ${version}, not ${expected}`);
  return {
    ok: notes.length === 0,
    figure: `deploy ${r.seconds.toFixed(1)} s; ${held ?? "?"} in flight at the stop, which took ` +
      `${stop?.toFixed(1)} s (TimeoutStopSec ${timeout} s); peak ${peakOnWire} submissions ` +
      `on the wire; ${describeSlice(drained)}; now ${version.split(" (")[0]}`,
    notes,
  };
}
