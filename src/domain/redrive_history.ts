/**
 * The redrive history a message carries as message attributes: `sluice dlq redrive` writes it
 * on the copy it sends back (docs/outcomes.md), and the worker's dead-letter copy keeps it, so a
 * message that fails again still says when it was redriven, by which run, and why it failed
 * before. A redrive recognises its own messages by `sluice_redrive_run`.
 */
import { attributeBytes, MAX_MESSAGE_BYTES, messageBytes } from "../lib/sqs_size.ts";

/** The run that redrove the message last. */
export const REDRIVE_RUN = "sluice_redrive_run";

/** The history attributes, most needed first (kept first when room is short). */
export const REDRIVE_HISTORY = [
  REDRIVE_RUN,
  "sluice_redriven_at",
  "sluice_last_error",
  "sluice_last_reason",
] as const;

/** SQS's limit on message attributes per message. */
export const MAX_ATTRIBUTES = 10;

/**
 * `attributes` (the worker's dead-letter attributes) plus the history `carried` holds, each as
 * long as the message stays within SQS's 10 attributes and 1 MiB. `attributes` itself when
 * there is nothing to carry (the common case allocates nothing).
 */
export function withRedriveHistory(
  body: string,
  attributes: Record<string, string>,
  carried: Record<string, { StringValue?: string }> | undefined,
): Record<string, string> {
  if (carried === undefined || !REDRIVE_HISTORY.some((name) => name in carried)) return attributes;
  const out = { ...attributes };
  let size = messageBytes(body, out);
  let count = Object.keys(out).length;
  for (const name of REDRIVE_HISTORY) {
    const value = carried[name]?.StringValue;
    if (!value || name in out || count >= MAX_ATTRIBUTES) continue;
    const bytes = attributeBytes(name, value);
    if (size + bytes > MAX_MESSAGE_BYTES) continue;
    out[name] = value;
    size += bytes;
    count++;
  }
  return out;
}
