/**
 * Where a run's duplicate submissions came from (the table's contrast). A total alone hides it:
 * a SIGKILL costs duplicates with or without the idempotency table (what the killed worker had
 * submitted and not yet recorded is submitted again after the redelivery), while producer copies
 * landing on two workers and redeliveries of accepted messages are what only the table stops.
 * Pure, so every rule is tested row by row (tests/lab/duplicate_causes_test.ts).
 */

/** One acceptance seen through a worker slot's validator front. */
export interface SlotAcceptance {
  slot: number;
  messageId: string;
  /** when the worker's request reached the front (ms) */
  sentAt: number;
  /** when the 2xx answer went back (ms) */
  acceptedAt: number;
}

/** A chaos SIGKILL: the slot, and when it was restarted (ms): what its front got before is the killed worker's. */
export interface KillMark {
  slot: number;
  at: number;
}

/** Acceptances beyond the first, by cause; the three add up to the run's duplicate submissions. */
export interface DuplicateCauses {
  /** the killed worker had submitted it (sent before its kill), and it was submitted again after */
  atKill: number;
  /** a producer duplicate (the same message sent twice) accepted twice, no kill involved */
  producerCopies: number;
  /** anything else: a redelivery of an accepted message (late delete, SQS outage, lapsed lock) */
  redeliveries: number;
}

export interface DuplicateInput {
  /** the validator's acceptances per message_id (the authority on the count) */
  acceptCount: ReadonlyMap<string, number>;
  /** the fronts' acceptances; empty when the run had no fronts (no kills) */
  acceptances: readonly SlotAcceptance[];
  kills: readonly KillMark[];
  /** message_ids the producer sent twice */
  producerDuplicateIds: ReadonlySet<string>;
}

/** Each acceptance beyond the first of a message_id, put down to one cause. */
export function duplicateCauses(input: DuplicateInput): DuplicateCauses {
  const causes: DuplicateCauses = { atKill: 0, producerCopies: 0, redeliveries: 0 };
  const byId = new Map<string, SlotAcceptance[]>();
  for (const a of input.acceptances) {
    const list = byId.get(a.messageId);
    if (list) list.push(a);
    else byId.set(a.messageId, [a]);
  }
  for (const [id, count] of input.acceptCount) {
    if (count < 2) continue;
    const seen = [...(byId.get(id) ?? [])].sort((a, b) => a.acceptedAt - b.acceptedAt);
    for (let i = 1; i < count; i++) {
      const later = seen[i];
      if (later && afterKill(later, seen, input.kills)) causes.atKill++;
      else if (input.producerDuplicateIds.has(id)) causes.producerCopies++;
      else causes.redeliveries++;
    }
  }
  return causes;
}

/**
 * `later` was sent after a kill of a slot whose (killed) worker had sent the same message. A
 * producer copy that merely arrives after such a kill counts here too: the kill comes first so
 * that the table's allowance (what a kill left on the wire) is never blamed on the table.
 */
function afterKill(
  later: SlotAcceptance,
  all: readonly SlotAcceptance[],
  kills: readonly KillMark[],
): boolean {
  return kills.some((k) =>
    later.sentAt > k.at &&
    all.some((a) => a !== later && a.slot === k.slot && a.sentAt <= k.at)
  );
}

/**
 * "12: 10 at a SIGKILL (…), 2 with no kill involved (2 producer copies …, 0 redeliveries …)" for
 * the summary: the second part is what a shared table stops, so runs with and without it compare.
 */
export function formatDuplicateCauses(total: number, c: DuplicateCauses): string {
  return `${total}: ${c.atKill} at a SIGKILL (sent by the killed worker, sent again after it), ` +
    `${c.producerCopies + c.redeliveries} with no kill involved (${c.producerCopies} producer ` +
    `copies accepted twice, ${c.redeliveries} redeliveries of accepted messages)`;
}
