/**
 * The lab's verdict: what it expected and what it counted become the problems and the
 * OK/failed result. Pure, so every rule is tested row by row (tests/lab/judge_test.ts).
 */

import type { DuplicateCauses } from "./duplicate_causes.ts";

/** What the run was supposed to produce. */
export interface JudgeExpected {
  /** poison messages generated: each must be in the DLQ with sluice_error/sluice_reason */
  poison: number;
  /** the workers shared an idempotency table: duplicates are bounded by the submissions on the wire */
  table: boolean;
}

/** A sample rejection or DLQ body, to make a problem line concrete. */
export interface JudgeSample {
  messageId?: string | undefined;
  reason: string;
  detail: string;
}

/** What the lab counted. */
export interface JudgeObserved {
  /** problems the run found before the counting (timeout, worker exit, SIGTERM phase, …), kept first */
  earlier: readonly string[];
  /** valid messages never accepted */
  lost: number;
  /** acceptances beyond the first */
  duplicateSubmissions: number;
  /** the same, by cause; with the table only a kill may cause any */
  duplicateCauses?: DuplicateCauses | undefined;
  /** messages in flight at chaos kills */
  killedInFlight: number;
  /** the killed workers' submissions on the wire at their kills (with the table) */
  onWire: number;
  /** distinct valid messages the validator rejected, and one of those rejections */
  wronglyRejected: number;
  wrongSample?: JudgeSample | undefined;
  /** submissions that were not valid messages, and the first of them */
  notValid: number;
  notValidSample?: JudgeSample | undefined;
  /** poison bodies in the DLQ with the attributes; without them (redriven by SQS) */
  poisonInDlq: number;
  withoutAttributes: number;
  /** DLQ messages that are not poison bodies, and up to three of their ids */
  foreign: number;
  foreignIds: readonly string[];
  /** poison bodies in the DLQ more than once, beyond the first copy */
  extraCopies: number;
  leftInQueue: number;
  /** FIFO runs: first acceptances after a later message of their group */
  orderInversions?: number;
  followedRedirects: number;
  /** RATE_LIMIT runs: the limit, and the worst key's submissions in one window of its DURATION */
  rateLimit?:
    | { limit: number; windowMs: number; worst: number; key: string; allowed?: number }
    | undefined;
}

export interface Verdict {
  ok: boolean;
  problems: string[];
}

/** Applies every rule in order; `ok` when no problem was found (the earlier ones included). */
export function judge(expected: JudgeExpected, observed: JudgeObserved): Verdict {
  const o = observed;
  const problems = [...o.earlier];
  if (o.lost > 0) problems.push(`${o.lost} valid messages were never accepted`);
  // With the table a kill may cost only the submissions it caught on the wire.
  const allowed = expected.table ? o.onWire : o.killedInFlight;
  if (o.duplicateSubmissions > allowed) {
    problems.push(
      `${o.duplicateSubmissions} duplicate submissions` +
        (allowed
          ? ` (more than the ${allowed} ${expected.table ? "on the wire" : "in flight"} at kills)`
          : ""),
    );
  }
  // Producer copies and redeliveries are what the shared table exists to stop: none may get through.
  const c = o.duplicateCauses;
  if (expected.table && c && c.producerCopies + c.redeliveries > 0) {
    problems.push(
      `${c.producerCopies + c.redeliveries} duplicate submissions the table should have stopped ` +
        `(${c.producerCopies} producer copies, ${c.redeliveries} redeliveries of accepted messages)`,
    );
  }
  if (o.wronglyRejected > 0) {
    const s = o.wrongSample;
    problems.push(
      `${o.wronglyRejected} valid messages were rejected by the validator (e.g. ${s?.messageId}: ${s?.reason}: ${s?.detail})`,
    );
  }
  if (o.notValid > 0) {
    problems.push(
      `${o.notValid} submissions were not valid messages (e.g. ${o.notValidSample?.reason}: ${o.notValidSample?.detail})`,
    );
  }
  if (o.poisonInDlq < expected.poison) {
    problems.push(
      `${o.poisonInDlq} of ${expected.poison} poison messages are in the DLQ with sluice_error/sluice_reason` +
        (o.withoutAttributes
          ? ` (${o.withoutAttributes} more without them: redriven by SQS, not dead-lettered by the worker)`
          : ""),
    );
  }
  if (o.foreign > 0) {
    problems.push(
      `${o.foreign} DLQ messages are not poison bodies (e.g. ${
        o.foreignIds.join(", ")
      }): valid messages dead-lettered`,
    );
  }
  // A kill between the DLQ send and the delete legitimately dead-letters a poison body twice.
  if (o.extraCopies > o.killedInFlight) {
    problems.push(`${o.extraCopies} poison messages were dead-lettered more than once`);
  }
  if (o.leftInQueue > 0) problems.push(`${o.leftInQueue} messages left in the queue`);
  if ((o.orderInversions ?? 0) > 0) {
    problems.push(
      `${o.orderInversions} messages were accepted after a later one of their FIFO group`,
    );
  }
  if (o.followedRedirects > 0) {
    problems.push(`${o.followedRedirects} requests followed a validator redirect`);
  }
  const r = o.rateLimit;
  if (r && r.worst > (r.allowed ?? r.limit)) {
    const allows = r.allowed === undefined || r.allowed === r.limit
      ? `${r.limit}`
      : `${r.limit}, ${r.allowed} for the fleet`;
    problems.push(
      `user ${r.key} had ${r.worst} submissions in one ${r.windowMs} ms window (RATE_LIMIT allows ${allows})`,
    );
  }
  return { ok: problems.length === 0, problems };
}
