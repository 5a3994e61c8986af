/**
 * The document submitted to the validator (docs/messages.md). The lab
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

/**
 * The JSON text of a profile, kept per profile object: a cached profile is the same object for
 * every message of its user, and serialising it again for each was a measurable part of the
 * per-message cost. Profiles are never changed after they are cached.
 */
const profileJson = new WeakMap<Profile, string>();

/**
 * `JSON.stringify(buildOutputDocument(message, enrichment))`, byte for byte, with the profile's
 * JSON taken from the memo above.
 */
export function outputDocumentJson(message: InputMessage, enrichment: Enrichment): string {
  let user = "null";
  if (enrichment.status !== "unknown_user") {
    const profile = enrichment.profile;
    user = profileJson.get(profile) ?? "";
    if (user === "") {
      user = JSON.stringify(profile);
      profileJson.set(profile, user);
    }
  }
  return `{"message_id":${JSON.stringify(message.message_id)},"user_id":${
    JSON.stringify(message.user_id)
  },"event_ts":${JSON.stringify(message.event_ts)},"payload":${
    JSON.stringify(message.payload)
  },"user":${user},"enrichment":{"status":"${enrichment.status}"}}`;
}
