/**
 * `sluice dlq purge`: deletes dead-lettered messages, all (PurgeQueue) or the ones a filter
 * selects. It names the DLQ and its depth first and asks for the count (or takes --yes).
 */
import { retry } from "../lib/retry.ts";
import type { DlqCommon, DlqFilter } from "./cli_args.ts";
import { type CliDeps, cliRetry } from "./cli_deps.ts";
import { deleteAll } from "./dlq_redrive.ts";
import { scanDlq } from "./dlq_scan.ts";
import { describeSqsFailure, type DlqSession, openDlq, queueDepth } from "./dlq_session.ts";

export interface PurgeCommand extends DlqCommon {
  filter: DlqFilter;
  yes: boolean;
}

function filtered(filter: DlqFilter): boolean {
  return filter.categories.length > 0 || filter.reasonMatch !== undefined ||
    filter.minAgeSeconds !== undefined;
}

export async function dlqPurge(cmd: PurgeCommand, deps: CliDeps): Promise<number> {
  const session = await openDlq(deps, { strict: true, allowAnyDlq: cmd.allowAnyDlq });
  if (typeof session === "number") return session;
  try {
    const depth = await queueDepth(session, session.dlqUrl, deps);
    // stderr: the target must be seen even when stdout goes to a script.
    deps.err(
      `dlq ${session.dlqUrl} (found by ${session.dlqSource}): ${depth.visible} visible, ` +
        `${depth.inFlight} in flight`,
    );
    const count = filtered(cmd.filter)
      ? await countSelected(session, cmd.filter, deps)
      : depth.visible;
    if (count === 0) {
      deps.out(
        cmd.output === "json"
          ? JSON.stringify({ dlq: session.dlqUrl, deleted: 0 })
          : "nothing to delete",
      );
      return 0;
    }
    if (!cmd.yes) {
      const answer = deps.ask(
        `Delete ${count} message(s) from ${session.dlqUrl}? Type ${count} to confirm: `,
      );
      if (answer === undefined) {
        deps.err(
          `sluice: dlq purge would delete ${count} message(s) from ${session.dlqUrl}; add --yes to confirm`,
        );
        return 2;
      }
      if (answer.trim() !== String(count)) {
        deps.err("sluice: not confirmed; nothing deleted");
        return 1;
      }
    }
    return filtered(cmd.filter)
      ? await purgeSelected(session, cmd, count, deps)
      : await purgeAll(session, cmd, count, deps);
  } catch (error) {
    deps.err(`sluice: ${describeSqsFailure(error, "purge", session.dlqUrl)}`);
    return 1;
  }
}

async function countSelected(
  session: DlqSession,
  filter: DlqFilter,
  deps: CliDeps,
): Promise<number> {
  const result = await scanDlq({
    session,
    deps,
    filter,
    limit: undefined,
    batchSize: 10,
    onBatch: (batch) => Promise.resolve({ release: batch, stop: false }),
  });
  return result.selected;
}

async function purgeAll(session: DlqSession, cmd: PurgeCommand, count: number, deps: CliDeps) {
  await retry(() => session.sqs.purgeQueue(session.dlqUrl), cliRetry(deps));
  deps.out(
    cmd.output === "json"
      ? JSON.stringify({ dlq: session.dlqUrl, purged: true, deleted: count })
      : `purged ${session.dlqUrl} (about ${count} message(s); SQS takes up to 60 s)`,
  );
  return 0;
}

async function purgeSelected(session: DlqSession, cmd: PurgeCommand, count: number, deps: CliDeps) {
  let deleted = 0;
  const notDeleted: string[] = [];
  await scanDlq({
    session,
    deps,
    filter: cmd.filter,
    // Never more than the count the operator confirmed.
    limit: count,
    batchSize: 10,
    onBatch: async (batch) => {
      const stuck = await deleteAll(session, batch, deps);
      deleted += batch.length - stuck.ids.length;
      notDeleted.push(...stuck.ids);
      return {
        release: batch.filter((m) => stuck.ids.includes(m.messageId)),
        stop: stuck.ids.length > 0,
      };
    },
  });
  if (cmd.output === "json") {
    deps.out(JSON.stringify({ dlq: session.dlqUrl, deleted, not_deleted: notDeleted }));
  } else deps.out(`deleted ${deleted} message(s) from ${session.dlqUrl}`);
  if (notDeleted.length > 0) deps.err(`sluice: not deleted: ${notDeleted.join(" ")}`);
  return notDeleted.length > 0 ? 1 : 0;
}
