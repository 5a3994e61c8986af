/**
 * `sluice dlq redrive`: moves selected dead-lettered messages back to the main queue. Each batch
 * is sent (SendMessageBatch, attributes kept) before it is deleted from the DLQ
 * (DeleteMessageBatch); a message whose delete fails after its send is reported as being in both
 * queues (the worker's message_id dedupe absorbs the second copy), and the command stops, exit 1.
 */
import type { BatchResult, SqsMessage } from "../adapters/sqs_client.ts";
import { retry } from "../lib/retry.ts";
import type { DlqFilter, Output } from "./cli_args.ts";
import { type CliDeps, cliRetry } from "./cli_deps.ts";
import { messageLine, messageRow } from "./dlq_peek.ts";
import { scanDlq } from "./dlq_scan.ts";
import { batchSizeFor, paceDelayMs, redriveAttributes } from "./dlq_select.ts";
import {
  describeSqsFailure,
  type DlqSession,
  isUnreachable,
  openDlq,
  queueDepth,
} from "./dlq_session.ts";

const ids = (messages: SqsMessage[]) => messages.map((m) => m.messageId).join(" ");

export interface RedriveCommand {
  output: Output;
  filter: DlqFilter;
  max: number | undefined;
  rate: number | undefined;
  dryRun: boolean;
}

interface Tally {
  moved: string[];
  wouldMove: Array<ReturnType<typeof messageRow>>;
  notMoved: Array<{ id: string; code: string }>;
  inBothQueues: string[];
  error: string | undefined;
}

export async function dlqRedrive(cmd: RedriveCommand, deps: CliDeps): Promise<number> {
  const session = await openDlq(deps);
  if (typeof session === "number") return session;
  const tally: Tally = {
    moved: [],
    wouldMove: [],
    notMoved: [],
    inBothQueues: [],
    error: undefined,
  };
  try {
    const depth = await queueDepth(session, session.dlqUrl, deps);
    const target = await queueDepth(session, session.queueUrl, deps);
    // stderr: the queues must be seen even when stdout goes to a script.
    deps.err(`from ${session.dlqUrl} (${depth.visible} visible; found by ${session.dlqSource})`);
    deps.err(
      `to   ${session.queueUrl} (${target.visible} visible)` +
        (cmd.dryRun ? "; dry run: nothing moves" : ""),
    );
    const move = mover(session, cmd, deps, tally);
    await scanDlq({
      session,
      deps,
      filter: cmd.filter,
      limit: cmd.max,
      batchSize: batchSizeFor(cmd.rate),
      onBatch: (batch) =>
        cmd.dryRun ? Promise.resolve(preview(batch, cmd, deps, tally)) : move(batch),
    });
  } catch (error) {
    tally.error = describeSqsFailure(error, "redrive", session.dlqUrl);
  }
  return report(session, cmd, deps, tally);
}

function preview(batch: SqsMessage[], cmd: RedriveCommand, deps: CliDeps, tally: Tally) {
  for (const m of batch) {
    const row = messageRow(m, deps.now(), false);
    tally.wouldMove.push(row);
    if (cmd.output === "text") deps.out(`would move ${messageLine(row)}`);
  }
  return { release: batch, stop: false };
}

/** Sends then deletes one batch at a time, paced to `--rate`. */
function mover(session: DlqSession, cmd: RedriveCommand, deps: CliDeps, tally: Tally) {
  let nextAt = 0;
  return async (batch: SqsMessage[]) => {
    if (cmd.rate !== undefined) {
      const wait = nextAt - deps.now();
      if (wait > 0) await deps.sleep(wait, deps.signal);
      nextAt = Math.max(nextAt, deps.now()) + paceDelayMs(batch.length, cmd.rate, deps.random());
    }
    const entries = batch.map((m, i) => ({
      id: String(i),
      body: m.body,
      messageAttributes: redriveAttributes(m.messageAttributes, deps.now()),
    }));
    let sent: BatchResult;
    try {
      sent = await retry(
        () => session.sqs.sendMessageBatch(session.queueUrl, entries, deps.signal),
        cliRetry(deps),
      );
    } catch (error) {
      // A send that timed out or lost its answer may have reached SQS all the same.
      const unsure = isUnreachable(error) ? `; may be in both queues: ${ids(batch)}` : "";
      tally.error = describeSqsFailure(error, "SendMessageBatch", session.queueUrl) + unsure;
      return { release: batch, stop: true };
    }
    const failedSend = new Set(sent.failed.map((f) => f.id));
    for (const f of sent.failed) {
      tally.notMoved.push({ id: batch[Number(f.id)]!.messageId, code: f.code });
    }
    const toDelete = batch.filter((_, i) => !failedSend.has(String(i)));
    const stuck = await deleteAll(session, toDelete, deps);
    tally.inBothQueues.push(...stuck.ids);
    if (stuck.error) tally.error = stuck.error;
    for (const m of toDelete) if (!stuck.ids.includes(m.messageId)) tally.moved.push(m.messageId);
    if (cmd.output === "text" && toDelete.length > stuck.ids.length) {
      deps.out(`moved ${tally.moved.length}`);
    }
    return {
      release: batch.filter((_, i) => failedSend.has(String(i))),
      stop: stuck.ids.length > 0,
    };
  };
}

/**
 * Deletes `messages` from the DLQ: the whole call retried as the worker retries, entries SQS
 * failed on its side retried twice more. Returns the ids still not deleted.
 */
export async function deleteAll(
  session: DlqSession,
  messages: SqsMessage[],
  deps: CliDeps,
): Promise<{ ids: string[]; error: string | undefined }> {
  let left = messages;
  for (let round = 0; round < 3 && left.length > 0; round++) {
    let result: BatchResult;
    try {
      result = await retry(() =>
        session.sqs.deleteMessageBatch(
          session.dlqUrl,
          left.map((m, i) => ({ id: String(i), receiptHandle: m.receiptHandle })),
          deps.signal,
        ), cliRetry(deps));
    } catch (error) {
      return {
        ids: left.map((m) => m.messageId),
        error: describeSqsFailure(error, "DeleteMessageBatch", session.dlqUrl),
      };
    }
    const failed = result.failed;
    const retriable = failed.filter((f) => !f.senderFault);
    if (retriable.length < failed.length) {
      const ids = failed.map((f) => left[Number(f.id)]!.messageId);
      return { ids, error: `DeleteMessageBatch refused: ${failed[0]?.code}` };
    }
    left = retriable.map((f) => left[Number(f.id)]!);
  }
  const code = left.length > 0 ? "DeleteMessageBatch kept failing" : undefined;
  return { ids: left.map((m) => m.messageId), error: code };
}

function report(session: DlqSession, cmd: RedriveCommand, deps: CliDeps, tally: Tally): number {
  const failed = tally.inBothQueues.length > 0 || tally.error !== undefined ||
    tally.notMoved.length > 0;
  if (cmd.output === "json") {
    deps.out(JSON.stringify({
      dlq: session.dlqUrl,
      queue: session.queueUrl,
      dry_run: cmd.dryRun,
      ...(cmd.dryRun ? { would_move: tally.wouldMove } : { moved: tally.moved.length }),
      not_moved: tally.notMoved,
      in_both_queues: tally.inBothQueues,
      error: tally.error ?? null,
    }));
  } else if (cmd.dryRun) {
    deps.out(`${tally.wouldMove.length} message(s) would move; nothing changed`);
  } else {
    deps.out(
      `moved ${tally.moved.length} message(s) from ${session.dlqUrl} to ${session.queueUrl}`,
    );
  }
  if (tally.error) deps.err(`sluice: ${tally.error}`);
  for (const n of tally.notMoved) {
    deps.err(`sluice: not moved (still in the DLQ): ${n.id} ${n.code}`);
  }
  if (tally.inBothQueues.length > 0) {
    deps.err(`sluice: in both queues: ${tally.inBothQueues.join(" ")}`);
    deps.err(
      "sluice: the worker's message_id dedupe absorbs the second copy; delete them from the DLQ",
    );
  }
  return failed ? 1 : 0;
}
