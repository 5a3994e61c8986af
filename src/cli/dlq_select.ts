/**
 * The decisions of the dlq subcommands, as pure functions: which message a filter selects, the
 * attributes a redriven copy carries, whether two URLs name one queue, and the redrive's pacing.
 */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import type { DlqFilter } from "./cli_args.ts";

type Attributes = SqsMessage["messageAttributes"];

/** The category a message was dead-lettered with; "NONE" when SQS's redrive policy moved it. */
export function categoryOf(message: Pick<SqsMessage, "messageAttributes">): string {
  return message.messageAttributes.sluice_error?.StringValue || "NONE";
}

/** Whether `filter` selects `message` at `nowMs`. */
export function selects(
  filter: DlqFilter,
  message: Pick<SqsMessage, "messageAttributes" | "attributes">,
  nowMs: number,
): boolean {
  if (filter.categories.length > 0 && !filter.categories.includes(categoryOf(message))) {
    return false;
  }
  if (filter.reasonMatch) {
    const reason = message.messageAttributes.sluice_reason?.StringValue ?? "";
    if (!filter.reasonMatch.test(reason)) return false;
  }
  if (filter.minAgeSeconds !== undefined) {
    const sent = Number(message.attributes.SentTimestamp);
    // Without a timestamp the age is unknown: a minimum age cannot be shown to hold.
    if (!Number.isFinite(sent) || nowMs - sent < filter.minAgeSeconds * 1000) return false;
  }
  return true;
}

/** SQS's limit per message; the redriven copy leaves room for the worker's two on a new failure. */
const MAX_ATTRIBUTES = 10;
const WORKER_ADDS = 2;

/**
 * The message attributes of a redriven copy: the producer's kept as they were; sluice's
 * `sluice_error`/`sluice_reason` renamed `sluice_last_error`/`sluice_last_reason` (so a second
 * dead-lettering writes fresh ones and the history stays readable), plus `sluice_redriven_at`.
 * sluice's own are dropped first when the total would not leave the worker room for its two.
 */
export function redriveAttributes(attributes: Attributes, nowMs: number): Attributes {
  const kept: Attributes = {};
  for (const [name, value] of Object.entries(attributes)) {
    if (!name.startsWith("sluice_")) kept[name] = value;
  }
  const ours: Attributes = { sluice_redriven_at: str(new Date(nowMs).toISOString()) };
  const error = attributes.sluice_error?.StringValue;
  const reason = attributes.sluice_reason?.StringValue;
  if (error) ours.sluice_last_error = str(error);
  if (reason) ours.sluice_last_reason = str(reason);
  const room = MAX_ATTRIBUTES - WORKER_ADDS - Object.keys(kept).length;
  for (const [name, value] of Object.entries(ours).slice(0, Math.max(0, room))) {
    kept[name] = value;
  }
  return kept;
}

function str(value: string): { DataType: string; StringValue: string } {
  return { DataType: "String", StringValue: value };
}

/** Whether two queue URLs name the same queue (same account and name, whatever the host form). */
export function sameQueue(a: string, b: string): boolean {
  const key = (url: string) => {
    try {
      return new URL(url).pathname.replace(/\/+$/, "").split("/").slice(-2).join("/");
    } catch {
      return url;
    }
  };
  return key(a) === key(b);
}

/**
 * Milliseconds to wait before sending `count` messages at `ratePerSecond`: the even spacing,
 * jittered by ±20% (`random` in [0, 1)) so several operators' redrives do not line up.
 */
export function paceDelayMs(count: number, ratePerSecond: number, random: number): number {
  return (count / ratePerSecond) * 1000 * (0.8 + 0.4 * random);
}

/** Batch size for a rate: small rates send one message at a time, never more than 10. */
export function batchSizeFor(ratePerSecond: number | undefined): number {
  if (ratePerSecond === undefined) return 10;
  return Math.max(1, Math.min(10, Math.floor(ratePerSecond)));
}
