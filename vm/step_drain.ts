/**
 * Step 2: the worker in the VM drains a slice of lab messages through
 * guestfwd: every valid message accepted once, every poison body in the DLQ,
 * nothing left. It notes the guest's clock first, for step 7.
 */
import type { OutgoingMessage } from "../lab/generator.ts";
import type { SliceResult } from "./lab_services.ts";
import type { StepResult, VmContext } from "./context.ts";
import { sshOk } from "./guest.ts";

/** Whether a drained slice is all there: the notes say what is not. */
export function sliceProblems(r: SliceResult, allowedDuplicates = 0): string[] {
  const p: string[] = [];
  if (r.accepted < r.valid) {
    p.push(`${r.valid - r.accepted} of ${r.valid} valid messages were not accepted`);
  }
  if (r.duplicates > allowedDuplicates) {
    p.push(`${r.duplicates} duplicate submissions (allowed ${allowedDuplicates})`);
  }
  if (r.poisonInDlq < r.poison) p.push(`${r.poisonInDlq} of ${r.poison} poison bodies in the DLQ`);
  if (r.leftInQueue > 0) p.push(`${r.leftInQueue} messages left in the queue`);
  return p;
}

export function describeSlice(r: SliceResult): string {
  return `${r.accepted}/${r.valid} accepted, ${r.duplicates} duplicate submissions, ` +
    `${r.poisonInDlq}/${r.poison} poison in the DLQ, ${r.leftInQueue} left, ${
      r.seconds.toFixed(1)
    } s`;
}

export async function stepDrain(
  ctx: VmContext,
  slice: readonly OutgoingMessage[],
): Promise<StepResult> {
  ctx.drainSince = Number((await sshOk(ctx.guest, "date +%s")).trim());
  const startedAt = Date.now();
  await ctx.lab.send(slice);
  const r = await ctx.lab.drained(slice, startedAt, 180);
  ctx.drainUntil = Number((await sshOk(ctx.guest, "date +%s")).trim()) + 1;
  const notes = sliceProblems(r);
  return { ok: notes.length === 0, figure: `${slice.length} messages: ${describeSlice(r)}`, notes };
}
