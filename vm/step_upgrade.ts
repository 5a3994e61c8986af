/**
 * Step 3: an upgrade (a second build, another version string) deployed while
 * messages are in flight: they arrive at a steady rate for the whole deploy,
 * and the rest of the slice after it. Nothing is lost; duplicate submissions stay within the peak of
 * submissions on the wire during the deploy; the stop took less than
 * TimeoutStopSec; the journal shows systemd's Stopping/Stopped lines.
 */
import type { OutgoingMessage } from "../lab/generator.ts";
import { deploy, type StepResult, tail, type VmContext } from "./context.ts";
import { sleep } from "./exec.ts";
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
  // 20 messages a second for as long as the deploy runs (near what the emulated VM drains)
  // so some are always in flight, whenever the restart comes.
  let sent = 0;
  let peakOnWire = 0;
  let deploying = true;
  const feeding = (async () => {
    while (deploying && sent < slice.length) {
      const next = slice.slice(sent, sent + 20);
      sent += next.length;
      await Promise.all([ctx.lab.send(next), sleep(1000)]);
    }
  })();
  const sampling = (async () => {
    while (deploying) {
      peakOnWire = Math.max(peakOnWire, ctx.lab.submissionsOnTheWire());
      await sleep(50);
    }
  })();
  await sleep(5000);
  const r = await deploy(ctx, ctx.binaries.upgrade).finally(() => (deploying = false));
  await Promise.all([feeding, sampling]);
  const fedDuringDeploy = sent;
  await ctx.lab.send(slice.slice(sent));
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
  if (held === 0) notes.push("nothing was in flight at the stop: the upgrade proved no drain");
  if (stop === undefined) notes.push("no Stopping/Stopped sluice lines in journalctl -u sluice");
  else if (!(stop < timeout)) {
    notes.push(`the stop took ${stop.toFixed(1)} s, TimeoutStopSec is ${timeout} s`);
  }
  const version = (await sshOk(g, "/usr/local/bin/sluice --version")).trim();
  const expected = ctx.binaries.upgradeVersion;
  if (!version.startsWith(`sluice ${expected} `)) notes.push(`running ${version}, not ${expected}`);
  return {
    ok: notes.length === 0,
    figure: `deploy ${r.seconds.toFixed(1)} s while ${fedDuringDeploy} messages arrived at 20/s; ` +
      `${held ?? "?"} in flight at the stop, which took ` +
      `${stop?.toFixed(1)} s (TimeoutStopSec ${timeout} s); peak ${peakOnWire} submissions ` +
      `on the wire; ${describeSlice(drained)}; now ${version.split(" (")[0]}`,
    notes,
  };
}
