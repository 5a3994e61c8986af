/**
 * The decisions of the dlq subcommands, as pure functions: which message a filter selects, the
 * attributes a redriven copy carries, whether two URLs name one queue, and the redrive's pacing
 * and batches.
 */
import type { SqsMessage } from "../adapters/sqs_client.ts";
import { MAX_ATTRIBUTES, REDRIVE_RUN } from "../domain/redrive_history.ts";
import { attributeBytes, MAX_MESSAGE_BYTES, messageBytes } from "../lib/sqs_size.ts";
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

/** Room the redriven copy leaves for the worker's two attributes on a new failure. */
const WORKER_ADDS = 2;

/** What one redrive run stamps on each copy it sends back. */
export interface RedriveStamp {
  nowMs: number;
  runId: string;
}

/**
 * The message attributes of a redriven copy: the producer's kept as they were; sluice's
 * `sluice_error`/`sluice_reason` renamed `sluice_last_error`/`sluice_last_reason` (so a second
 * dead-lettering writes fresh ones and the history stays readable), plus `sluice_redriven_at`
 * and the run's `sluice_redrive_run`. sluice's own are dropped, last first, when the total would
 * not leave the worker room for its two or the copy would pass SQS's 1 MiB.
 */
export function redriveAttributes(
  message: Pick<SqsMessage, "body" | "messageAttributes">,
  stamp: RedriveStamp,
): Attributes {
  const attributes = message.messageAttributes;
  const kept: Attributes = {};
  for (const [name, value] of Object.entries(attributes)) {
    if (!name.startsWith("sluice_")) kept[name] = value;
  }
  const ours: Attributes = {
    [REDRIVE_RUN]: str(stamp.runId),
    sluice_redriven_at: str(new Date(stamp.nowMs).toISOString()),
  };
  const error = attributes.sluice_error?.StringValue;
  const reason = attributes.sluice_reason?.StringValue;
  if (error) ours.sluice_last_error = str(error);
  if (reason) ours.sluice_last_reason = str(reason);
  let room = MAX_ATTRIBUTES - WORKER_ADDS - Object.keys(kept).length;
  let size = messageBytes(message.body, kept);
  for (const [name, value] of Object.entries(ours)) {
    const bytes = attributeBytes(name, value);
    if (room <= 0 || size + bytes > MAX_MESSAGE_BYTES) break;
    kept[name] = value;
    size += bytes;
    room--;
  }
  return kept;
}

/** Whether this run sent `message` back already (it came back to the DLQ since). */
export function movedByRun(message: Pick<SqsMessage, "messageAttributes">, runId: string): boolean {
  return message.messageAttributes[REDRIVE_RUN]?.StringValue === runId;
}

function str(value: string): { DataType: string; StringValue: string } {
  return { DataType: "String", StringValue: value };
}

/**
 * Batch entries in order, cut into SendMessageBatch requests of at most `maxEntries` and at most
 * `maxBytes` together (SQS refuses a longer one whole, BatchRequestTooLong).
 */
export function byteBatches<E extends { body: string; messageAttributes?: Attributes }>(
  entries: E[],
  maxBytes = MAX_MESSAGE_BYTES,
  maxEntries = 10,
): E[][] {
  const out: E[][] = [];
  let current: E[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = messageBytes(entry.body, entry.messageAttributes ?? {});
    if (current.length > 0 && (current.length >= maxEntries || bytes + size > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** "ACCOUNT/NAME" of a queue URL, whatever the host form; the text itself when it is not a URL. */
export function queueKey(url: string): string {
  try {
    return new URL(url).pathname.replace(/\/+$/, "").split("/").slice(-2).join("/");
  } catch {
    return url;
  }
}

/** Whether two queue URLs name the same queue (same account and name, whatever the host form). */
export function sameQueue(a: string, b: string): boolean {
  return queueKey(a) === queueKey(b);
}

/** The account and name of a queue ARN (`arn:PARTITION:sqs:REGION:ACCOUNT:NAME`); else undefined. */
export function parseQueueArn(arn: string): { account: string; name: string } | undefined {
  const [prefix, , service, , account, name, ...rest] = arn.split(":");
  if (prefix !== "arn" || service !== "sqs" || !account || !name || rest.length > 0) {
    return undefined;
  }
  return { account, name };
}

/**
 * Milliseconds to wait before sending `count` messages at `ratePerSecond`: the even spacing,
 * jittered by ±20% (`random` in [0, 1)) so several operators' redrives do not line up.
 */
export function paceDelayMs(count: number, ratePerSecond: number, random: number): number {
  return (count / ratePerSecond) * 1000 * (0.8 + 0.4 * random);
}

/** Batch size for a rate: small rates send one message at a time, never more than 10. */
export function batchSizeFor(ratePerSecond: number): number {
  return Math.max(1, Math.min(10, Math.floor(ratePerSecond)));
}
