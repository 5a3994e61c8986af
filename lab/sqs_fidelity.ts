/**
 * Where fauxqs 2.4.1 differs from real SQS in what the worker depends on, and the SQS proxy
 * (lab/sqs_proxy.ts) makes up the difference:
 * - characters: SQS allows #x10000 to #x10FFFF (emoji) in bodies, fauxqs refuses them. A body
 *   holding one is stored escaped (a marker, then each such character as U+F8FF and six hex
 *   digits) and unescaped on the way out, MD5s recomputed. SQS refuses what is outside its set in
 *   bodies (InvalidMessageContents) and in String attribute values (InvalidParameterValue, lone
 *   surrogates too): checked here with SQS's texts, per entry in a batch.
 * - a SendMessageBatch over 1 MiB in total is refused whole with SQS's text (bytes counted as
 *   SQS does: bodies, attribute names, types and values).
 * - system attributes fauxqs never returns: AWSTraceHeader (sent as a MessageSystemAttribute),
 *   and DeadLetterQueueSourceArn on a message SQS's redrive policy moved (a message the proxy saw
 *   received from another queue first), each only when asked for.
 * Limits: an escaped emoji counts 9 bytes, not 4, toward fauxqs's own 1 MiB check; a message
 * counts as moved only if the proxy saw a receive of it on its source queue.
 */
import { createHash } from "node:crypto";
import { type SqsAnswer, sqsError, sqsFaults } from "./sqs_answers.ts";

export const MAX_BYTES = 1024 * 1024;

/** SQS's character set for bodies and String attribute values, as its errors spell it. */
const ALLOWED = "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF";
/** Starts a body stored escaped; U+F8FF introduces each escaped character. */
const MARKER = "\uf8ff\uf8fe";
const ESCAPED = /\uf8ff([0-9a-f]{6})/g;
const TO_ESCAPE = /[\u{10000}-\u{10ffff}\uf8ff]/gu;
const ASTRAL = /[\u{10000}-\u{10ffff}]/u;

type Entry = Record<string, unknown>;
type Attributes = Record<
  string,
  { DataType?: unknown; StringValue?: unknown; BinaryValue?: unknown }
>;

/** The first character SQS refuses, as `#xD83D`; undefined when every one is allowed. */
export function refusedCharacter(text: string): string | undefined {
  for (const char of text) {
    const cp = char.codePointAt(0)!;
    const ok = cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
      (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000;
    if (!ok) return `#x${cp.toString(16).toUpperCase()}`;
  }
  return undefined;
}

/** SQS's refusal of one message (body and attributes), or undefined when SQS takes it. */
export function refusal(body: unknown, attributes: unknown): SqsAnswer | undefined {
  if (typeof body !== "string" || body === "") {
    return sqsError("MissingParameter", {
      message: "The request must contain the parameter MessageBody.",
    });
  }
  const inBody = refusedCharacter(body);
  if (inBody) {
    return sqsError("InvalidMessageContents", {
      message:
        `Invalid binary character '${inBody}' was found in the message body, the set of allowed characters is ${ALLOWED}`,
    });
  }
  for (const [name, value] of Object.entries((attributes ?? {}) as Attributes)) {
    const bad = typeof value?.StringValue === "string" && refusedCharacter(value.StringValue);
    if (bad) {
      return sqsError("InvalidParameterValue", {
        message:
          `Message (user) attribute '${name}' value contains invalid binary character '${bad}'. You must use only the following supported characters: ${ALLOWED}`,
      });
    }
  }
  if (messageBytes(body, attributes) > MAX_BYTES) {
    return sqsError("InvalidParameterValue", {
      message:
        `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_BYTES} bytes.`,
    });
  }
  return undefined;
}

/** A message's size as SQS counts it: body, and each attribute's name, type and value. */
export function messageBytes(body: unknown, attributes: unknown): number {
  const encoder = new TextEncoder();
  let size = encoder.encode(String(body ?? "")).length;
  for (const [name, v] of Object.entries((attributes ?? {}) as Attributes)) {
    const value = v?.StringValue ?? v?.BinaryValue ?? "";
    size += encoder.encode(`${name}${v?.DataType ?? ""}${value}`).length;
  }
  return size;
}

export function md5Hex(text: string): string {
  return createHash("md5").update(text).digest("hex");
}

/** The body as fauxqs can store it. */
export function escapeBody(body: string): string {
  if (!ASTRAL.test(body) && !body.startsWith(MARKER)) return body;
  return MARKER +
    body.replace(TO_ESCAPE, (c) => `\uf8ff${c.codePointAt(0)!.toString(16).padStart(6, "0")}`);
}

/** The body as it was sent. */
export function unescapeBody(stored: string): string {
  if (!stored.startsWith(MARKER)) return stored;
  return stored.slice(MARKER.length).replace(
    ESCAPED,
    (_, hex) => String.fromCodePoint(parseInt(hex, 16)),
  );
}

/** A send on its way to fauxqs: entries SQS would refuse, taken out, and the rest escaped. */
export interface PreparedSend {
  /** the request to forward, undefined when nothing is left to send */
  body: Record<string, unknown> | undefined;
  /** SQS's answer to the whole request, when it refuses it whole */
  refused?: SqsAnswer;
  /** batch entries refused one by one, in SQS's Failed form */
  failed: Entry[];
}

/** Checks and escapes a SendMessage or SendMessageBatch request. */
export function prepareSend(action: string, body: Record<string, unknown>): PreparedSend {
  if (action === "SendMessage") {
    const refused = refusal(body.MessageBody, body.MessageAttributes);
    if (refused) return { body: undefined, refused, failed: [] };
    return { body: { ...body, MessageBody: escapeBody(String(body.MessageBody)) }, failed: [] };
  }
  const entries = Array.isArray(body.Entries) ? body.Entries as Entry[] : [];
  const total = entries.reduce((n, e) => n + messageBytes(e.MessageBody, e.MessageAttributes), 0);
  if (total > MAX_BYTES) {
    return { body: undefined, refused: sqsFaults.batchRequestTooLong(total), failed: [] };
  }
  const failed: Entry[] = [];
  const kept: Entry[] = [];
  for (const entry of entries) {
    const refused = refusal(entry.MessageBody, entry.MessageAttributes);
    if (refused) failed.push(failedEntry(String(entry.Id), refused));
    else kept.push({ ...entry, MessageBody: escapeBody(String(entry.MessageBody)) });
  }
  // Nothing left to forward: SQS answers the refused entries alone.
  if (kept.length === 0 && entries.length > 0) return { body: undefined, failed };
  return { body: { ...body, Entries: kept }, failed };
}

/** A refusal as a batch's Failed entry. */
export function failedEntry(id: string, answer: SqsAnswer): Entry {
  const error = answer.body as { __type: string; message: string };
  return {
    Id: id,
    Code: error.__type.slice(error.__type.indexOf("#") + 1),
    Message: error.message,
    SenderFault: (answer.status ?? 400) < 500,
  };
}
