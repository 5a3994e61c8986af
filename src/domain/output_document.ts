/**
 * The document submitted to the validator (contract section 3). The lab
 * validator is the authority on this shape, so it is built here and nowhere else.
 */
import type { InputMessage } from "./message_schema.ts";

/** A user profile as the enrichment API returns it, `meta` already removed. */
export type Profile = Record<string, unknown>;

/** What enrichment found for a message's user. */
export type Enrichment =
  | { status: "ok"; profile: Profile }
  | { status: "stale"; profile: Profile }
  | { status: "unknown_user" };

export interface OutputDocument {
  message_id: string;
  user_id: string;
  event_ts: number;
  payload: Record<string, unknown>;
  user: Profile | null;
  enrichment: { status: Enrichment["status"] };
}

/** Builds the output document: exactly these keys, in this order. */
export function buildOutputDocument(message: InputMessage, enrichment: Enrichment): OutputDocument {
  return {
    message_id: message.message_id,
    user_id: message.user_id,
    event_ts: message.event_ts,
    payload: message.payload,
    user: enrichment.status === "unknown_user" ? null : enrichment.profile,
    enrichment: { status: enrichment.status },
  };
}
