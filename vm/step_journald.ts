/**
 * Step 7: journald kept every line the worker wrote at LOG_LEVEL=info during
 * step 2's drain (run right after it, before anything else reaches the
 * journal): no "Suppressed N messages" notice, and one dead-letter line
 * per poison body of the slice.
 */
import type { OutgoingMessage } from "../lab/generator.ts";
import type { StepResult, VmContext } from "./context.ts";
import { sshOk } from "./guest.ts";
import { suppressedMessages } from "./journal.ts";

export async function stepJournald(
  ctx: VmContext,
  slice: readonly OutgoingMessage[],
): Promise<StepResult> {
  if (ctx.drainSince === undefined) return { ok: false, figure: "step 2 did not run" };
  const since = `--since @${ctx.drainSince} --until @${ctx.drainUntil ?? ctx.drainSince + 3600}`;
  // The whole journal: journald logs its suppression notices under its own name.
  const all = await sshOk(ctx.guest, `journalctl ${since} --no-pager -o cat`, 60);
  const sluice = await sshOk(
    ctx.guest,
    `journalctl -u sluice.service ${since} --no-pager -o cat`,
    60,
  );
  const suppressed = suppressedMessages(all);
  const lines = sluice.split("\n").filter((l) => l.startsWith("{"));
  const deadLetterLines = lines.filter((l) => l.includes('"outcome":"dead_lettered"')).length;
  const poison = slice.filter((m) => m.poisonKind).length;
  const notes: string[] = [];
  if (suppressed > 0) notes.push(`journald suppressed ${suppressed} messages`);
  if (deadLetterLines < poison) {
    notes.push(`${deadLetterLines} dead-letter lines for ${poison} poison bodies`);
  }
  return {
    ok: notes.length === 0,
    figure: `${lines.length} sluice log lines in step 2, ${deadLetterLines} dead-letter lines ` +
      `for ${poison} poison bodies, ${suppressed} suppressed`,
    notes,
  };
}
