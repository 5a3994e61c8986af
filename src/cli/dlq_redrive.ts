/**
 * `sluice dlq redrive`: moves selected dead-lettered messages back, each to its own source queue
 * (dlq_sources.ts) or all to `--to`. Each batch is sent (SendMessageBatch, attributes kept,
 * split by bytes) before it is deleted from the DLQ (DeleteMessageBatch); a message whose delete
 * fails after its send is reported as being in both queues (the worker's message_id dedupe
 * absorbs the second copy), and the command stops, exit 1.
 *
 * One run is one pass: it looks at no more messages than the DLQ held when it started, paced to
 * `--rate`, and leaves alone the copies it moved that came back dead-lettered again (they carry
 * its `sluice_redrive_run`), so it ends even while a worker dead-letters everything it is sent.
 */
import {
  type BatchResult,
  type FifoSend,
  isFifoQueue,
  type SqsMessage,
} from "../adapters/sqs_client.ts";
import { SqsError } from "../lib/errors.ts";
import { retry } from "../lib/retry.ts";
import type { DlqCommon, DlqFilter } from "./cli_args.ts";
import { type CliDeps, cliRetry } from "./cli_deps.ts";
import { messageLine, messageRow } from "./dlq_peek.ts";
import { scanDlq } from "./dlq_scan.ts";
import {
  batchSizeFor,
  byteBatches,
  movedByRun,
  paceDelayMs,
  redriveAttributes,
  type RedriveStamp,
  sameQueue,
} from "./dlq_select.ts";
import {
  describeSqsFailure,
  type DlqSession,
  isUnreachable,
  openDlq,
  queueDepth,
} from "./dlq_session.ts";
import { type Destination, destinations } from "./dlq_sources.ts";

export interface RedriveCommand extends DlqCommon {
  filter: DlqFilter;
  max: number | undefined;
  rate: number;
  to: string | undefined;
  dryRun: boolean;
}

interface Tally {
  /** Messages moved, by destination queue URL. */
  moved: Map<string, number>;
  wouldMove: Array<ReturnType<typeof messageRow> & { to: string }>;
  notMoved: Array<{ id: string; code: string }>;
  inBothQueues: string[];
  /** Copies this run moved that came back to the DLQ while it ran. */
  cameBack: number;
  /** How many messages the DLQ held at the start: the pass's bound. */
  depth: number;
  error: string | undefined;
}

const total = (tally: Tally) => [...tally.moved.values()].reduce((a, b) => a + b, 0);

export async function dlqRedrive(cmd: RedriveCommand, deps: CliDeps): Promise<number> {
  const session = await openDlq(deps, { strict: true, allowAnyDlq: cmd.allowAnyDlq });
  if (typeof session === "number") return session;
  if (cmd.to !== undefined && sameQueue(cmd.to, session.dlqUrl)) {
    deps.err(`sluice: --to ${cmd.to} is the dead-letter queue itself: nothing would move`);
    return 2;
  }
  const tally: Tally = {
    moved: new Map(),
    wouldMove: [],
    notMoved: [],
    inBothQueues: [],
    cameBack: 0,
    depth: 0,
    error: undefined,
  };
  const stamp = { nowMs: deps.clock.now(), runId: runIdOf(deps) };
  try {
    tally.depth = (await queueDepth(session, session.dlqUrl, deps)).visible;
    await announce(session, cmd, stamp, tally.depth, deps);
    const destinationOf = destinations(session, deps, cmd.to);
    const move = mover(session, cmd, deps, tally, stamp);
    const result = await scanDlq({
      session,
      deps,
      filter: cmd.filter,
      limit: cmd.max,
      maxScanned: tally.depth,
      skip: (m) => movedByRun(m, stamp.runId),
      batchSize: batchSizeFor(cmd.rate),
      onBatch: (batch) =>
        cmd.dryRun ? preview(batch, destinationOf, cmd, deps, tally) : move(batch, destinationOf),
    });
    tally.cameBack = result.skipped;
  } catch (error) {
    tally.error = describeSqsFailure(error, "redrive", session.dlqUrl);
  } finally {
    deps.status("");
  }
  return report(session, cmd, stamp, deps, tally);
}

/** A run id: time and randomness enough that two runs never share one. */
function runIdOf(deps: CliDeps): string {
  const random = Math.floor(deps.clock.random() * 36 ** 6).toString(36).padStart(6, "0");
  return `${deps.clock.now().toString(36)}-${random}`;
}

/** The queues and the bound, on stderr: they must be seen even when stdout goes to a script. */
async function announce(
  session: DlqSession,
  cmd: RedriveCommand,
  stamp: RedriveStamp,
  depth: number,
  deps: CliDeps,
): Promise<void> {
  deps.err(`from ${session.dlqUrl} (${depth} visible; found by ${session.dlqSource})`);
  if (cmd.to !== undefined) deps.err(`to   ${cmd.to} (--to)`);
  else {
    const main = await queueDepth(session, session.queueUrl, deps);
    deps.err(
      `to   each message's source queue (DeadLetterQueueSourceArn); those sluice ` +
        `dead-lettered to ${session.queueUrl} (${main.visible} visible)`,
    );
  }
  const bound = Math.min(depth, cmd.max ?? depth);
  deps.err(
    `one pass: at most ${bound} message(s) at ${cmd.rate}/s, run ${stamp.runId}` +
      (cmd.dryRun ? "; dry run: nothing moves" : ""),
  );
}

async function preview(
  batch: SqsMessage[],
  destinationOf: (m: SqsMessage) => Promise<Destination>,
  cmd: RedriveCommand,
  deps: CliDeps,
  tally: Tally,
) {
  for (const m of batch) {
    const destination = await destinationOf(m);
    const row = messageRow(m, deps.clock.now(), false);
    if ("error" in destination) {
      tally.notMoved.push({ id: m.messageId, code: destination.error });
      if (cmd.output === "text") deps.out(`would stay ${messageLine(row)}  ${destination.error}`);
      continue;
    }
    tally.wouldMove.push({ ...row, to: destination.url });
    if (cmd.output === "text") deps.out(`would move ${messageLine(row)}  to ${destination.url}`);
  }
  return { release: batch, stop: false };
}

/** Moves one scanned batch at a time, paced to `--rate`, grouped by destination. */
function mover(
  session: DlqSession,
  cmd: RedriveCommand,
  deps: CliDeps,
  tally: Tally,
  stamp: RedriveStamp,
) {
  let nextAt = 0;
  return async (batch: SqsMessage[], destinationOf: (m: SqsMessage) => Promise<Destination>) => {
    const wait = nextAt - deps.clock.now();
    if (wait > 0) await deps.clock.sleep(wait, deps.signal);
    nextAt = Math.max(nextAt, deps.clock.now()) +
      paceDelayMs(batch.length, cmd.rate, deps.clock.random());
    const release: SqsMessage[] = [];
    const groups = new Map<string, SqsMessage[]>();
    for (const m of batch) {
      const destination = await destinationOf(m);
      if ("error" in destination) {
        tally.notMoved.push({ id: m.messageId, code: destination.error });
        release.push(m);
      } else groups.set(destination.url, [...groups.get(destination.url) ?? [], m]);
    }
    let stop = false;
    for (const [url, messages] of groups) {
      if (stop) {
        release.push(...messages);
        continue;
      }
      const moved = await moveTo(session, url, messages, { deps, tally, stamp });
      release.push(...moved.release);
      stop = moved.stop;
    }
    deps.status(
      `redrive: moved ${total(tally)} of at most ${Math.min(tally.depth, cmd.max ?? tally.depth)}`,
    );
    return { release, stop };
  };
}

/** Sends `messages` to `url`, then deletes the ones SQS took from the DLQ. */
async function moveTo(
  session: DlqSession,
  url: string,
  messages: SqsMessage[],
  o: { deps: CliDeps; tally: Tally; stamp: RedriveStamp },
): Promise<{ release: SqsMessage[]; stop: boolean }> {
  const { deps, tally } = o;
  const fifo = isFifoQueue(url);
  const entries = messages.map((m, i) => ({
    id: String(i),
    body: m.body,
    messageAttributes: redriveAttributes(m, o.stamp),
    // Back to a FIFO queue: its own group, and an id from this copy so a retry is not doubled.
    fifo: fifo
      ? {
        groupId: m.attributes.MessageGroupId ?? "sluice-redrive",
        deduplicationId: `rd-${m.messageId}`,
      }
      : undefined,
  }));
  const sent = await sendAll(session, url, entries, deps);
  const kept = new Set([...sent.failed.map((f) => f.id), ...sent.unsent]);
  for (const f of sent.failed) {
    tally.notMoved.push({ id: messages[Number(f.id)]!.messageId, code: f.code });
  }
  if (sent.error !== undefined) {
    // A send that timed out or lost its answer may have reached SQS all the same.
    const unsure = sent.unsure.map((id) => messages[Number(id)]!.messageId);
    tally.error = describeSqsFailure(sent.error, "SendMessageBatch", url) +
      (unsure.length > 0 ? `; may be in both queues: ${unsure.join(" ")}` : "");
  }
  const toDelete = messages.filter((_, i) => !kept.has(String(i)));
  const stuck = await deleteAll(session, toDelete, deps);
  tally.inBothQueues.push(...stuck.ids);
  if (stuck.error) tally.error = stuck.error;
  const moved = toDelete.length - stuck.ids.length;
  if (moved > 0) tally.moved.set(url, (tally.moved.get(url) ?? 0) + moved);
  return {
    release: messages.filter((_, i) => kept.has(String(i))),
    stop: stuck.ids.length > 0 || sent.error !== undefined,
  };
}

type Entry = {
  id: string;
  body: string;
  messageAttributes: SqsMessage["messageAttributes"];
  fifo: FifoSend | undefined;
};

/**
 * Sends entries in requests within SQS's 10 entries and 1 MiB. On a failure it stops: the ids
 * of that request (`unsure`: maybe sent when SQS could not be reached) and of the later ones
 * (`unsent`) come back with the error.
 */
async function sendAll(session: DlqSession, url: string, entries: Entry[], deps: CliDeps) {
  const failed: BatchResult["failed"] = [];
  const groups = byteBatches(entries);
  for (let g = 0; g < groups.length; g++) {
    try {
      failed.push(...(await sendSplit(session, url, groups[g]!, deps)).failed);
    } catch (error) {
      const here = groups[g]!.map((e) => e.id);
      const unsent = groups.slice(g).flat().map((e) => e.id);
      return { failed, unsent, unsure: isUnreachable(error) ? here : [], error };
    }
  }
  return { failed, unsent: [] as string[], unsure: [] as string[], error: undefined };
}

/** One SendMessageBatch, halved and sent again if SQS still finds it too long (a lower limit). */
async function sendSplit(
  session: DlqSession,
  url: string,
  entries: Entry[],
  deps: CliDeps,
): Promise<BatchResult> {
  try {
    return await retry(
      () => session.sqs.sendMessageBatch(url, entries, deps.signal),
      cliRetry(deps),
    );
  } catch (error) {
    if (
      !(error instanceof SqsError && error.code === "BatchRequestTooLong") || entries.length < 2
    ) {
      throw error;
    }
    const half = Math.ceil(entries.length / 2);
    const first = await sendSplit(session, url, entries.slice(0, half), deps);
    const second = await sendSplit(session, url, entries.slice(half), deps);
    return {
      successful: [...first.successful, ...second.successful],
      failed: [...first.failed, ...second.failed],
    };
  }
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

function report(
  session: DlqSession,
  cmd: RedriveCommand,
  stamp: RedriveStamp,
  deps: CliDeps,
  tally: Tally,
): number {
  if (cmd.output === "json") {
    deps.out(JSON.stringify({
      dlq: session.dlqUrl,
      queue: session.queueUrl,
      to: cmd.to ?? null,
      run: stamp.runId,
      dry_run: cmd.dryRun,
      depth_at_start: tally.depth,
      ...(cmd.dryRun
        ? { would_move: tally.wouldMove }
        : { moved: total(tally), moved_to: Object.fromEntries(tally.moved) }),
      came_back: tally.cameBack,
      not_moved: tally.notMoved,
      in_both_queues: tally.inBothQueues,
      error: tally.error ?? null,
    }));
  } else deps.out(summaryLine(session, cmd, tally));
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
  const failed = tally.inBothQueues.length > 0 || tally.error !== undefined ||
    tally.notMoved.length > 0;
  return failed ? 1 : 0;
}

/** The text result: the count, where they went, and what came back during the run. */
function summaryLine(session: DlqSession, cmd: RedriveCommand, tally: Tally): string {
  if (cmd.dryRun) return `${tally.wouldMove.length} message(s) would move; nothing changed`;
  const places = [...tally.moved].map(([url, n]) => tally.moved.size > 1 ? `${url} (${n})` : url);
  const back = tally.cameBack > 0
    ? `; ${tally.cameBack} moved copies came back dead-lettered again and stay in the DLQ`
    : "";
  return `moved ${total(tally)} message(s) from ${session.dlqUrl}` +
    (places.length > 0 ? ` to ${places.join(", ")}` : "") +
    ` (one pass over the ${tally.depth} found at the start)${back}`;
}
