/**
 * The ids a poison body still carries: a body that is JSON but fails
 * validation often has a good `message_id` and `user_id`, and the outcome log
 * line needs them so a student can match it to the producer's and the
 * validator's logs.
 */
import { jsonDepth, MAX_DEPTH } from "./message_schema.ts";

/** Longest id text kept for a log line. */
const MAX_ID_CHARS = 200;

/** Whatever ids parsed; absent when the body is not a JSON object or the field is unusable. */
export interface PoisonIds {
  messageId?: string;
  userId?: string;
}

/** `message_id` (a non-empty string) and `user_id` (a non-empty string or a finite number). */
export function poisonIds(body: string): PoisonIds {
  if (jsonDepth(body) > MAX_DEPTH) return {};
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    return {};
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) return {};
  const record = data as Record<string, unknown>;
  const ids: PoisonIds = {};
  const messageId = record["message_id"];
  if (typeof messageId === "string" && messageId !== "") {
    ids.messageId = messageId.slice(0, MAX_ID_CHARS);
  }
  const userId = record["user_id"];
  if (typeof userId === "string" && userId !== "") ids.userId = userId.slice(0, MAX_ID_CHARS);
  else if (typeof userId === "number" && Number.isFinite(userId)) ids.userId = String(userId);
  return ids;
}
