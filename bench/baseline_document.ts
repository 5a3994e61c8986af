/**
 * Input parsing and output document for the benchmark baselines (contract §2 and §3).
 *
 * The baselines deliberately share nothing with src/: they stand for what a team would write
 * without sluice, so they only have to be correct, not fast. Both baselines use this module so
 * that a difference in the figures comes from the processing model, never from the document.
 */

/** A valid input message, normalised as contract §2 says. */
export interface BaselineInput {
  message_id: string;
  user_id: string;
  event_ts: number;
  payload: Record<string, unknown>;
}

// ISO-8601 with an explicit zone (Z or ±hh:mm / ±hhmm / ±hh); zone-less strings are poison.
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses an SQS body; returns undefined for a poison body. */
export function parseBaselineInput(body: string): BaselineInput | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!isPlainObject(raw)) return undefined;
  const { message_id: messageId, user_id: userIdRaw, event_ts: eventTsRaw, payload } = raw;
  if (typeof messageId !== "string" || messageId === "") return undefined;

  let userId: string;
  if (typeof userIdRaw === "string" && userIdRaw !== "") userId = userIdRaw;
  else if (typeof userIdRaw === "number" && Number.isSafeInteger(userIdRaw) && userIdRaw >= 0) {
    userId = String(userIdRaw);
  } else return undefined;

  let eventTs: number;
  if (typeof eventTsRaw === "number" && Number.isFinite(eventTsRaw)) eventTs = eventTsRaw;
  else if (typeof eventTsRaw === "string" && ISO_WITH_ZONE.test(eventTsRaw)) {
    const ms = Date.parse(eventTsRaw);
    if (!Number.isFinite(ms)) return undefined;
    eventTs = Math.floor(ms / 1000);
  } else return undefined;

  if (!isPlainObject(payload)) return undefined;
  return { message_id: messageId, user_id: userId, event_ts: eventTs, payload };
}

/** The validator's document: the profile without `meta`, or `user: null` for an unknown user. */
export function buildBaselineDocument(
  input: BaselineInput,
  profile: Record<string, unknown> | null,
): Record<string, unknown> {
  let user: Record<string, unknown> | null = null;
  if (profile !== null) {
    const { meta: _meta, ...rest } = profile;
    user = rest;
  }
  return {
    message_id: input.message_id,
    user_id: input.user_id,
    event_ts: input.event_ts,
    payload: input.payload,
    user,
    enrichment: { status: profile === null ? "unknown_user" : "ok" },
  };
}

/** `VALIDATOR_URL` may be the base URL or already end in /ingest (contract §3). */
export function ingestUrl(validatorUrl: string): string {
  const trimmed = validatorUrl.replace(/\/+$/, "");
  return trimmed.endsWith("/ingest") ? trimmed : `${trimmed}/ingest`;
}

/** The enrichment single-user URL, with the id percent-encoded (contract §2). */
export function userUrl(enrichUrl: string, userId: string): string {
  return `${enrichUrl.replace(/\/+$/, "")}/v1/users/${encodeURIComponent(userId)}`;
}

/**
 * One enrichment lookup followed by one validator submission, the way a straightforward
 * worker does it. Resolves when the validator accepted; throws on any other outcome so the
 * caller leaves the message on the queue.
 */
export async function processBaselineMessage(
  input: BaselineInput,
  options: { enrichUrl: string; validatorUrl: string; timeoutMs: number; fetch?: typeof fetch },
): Promise<void> {
  const doFetch = options.fetch ?? fetch;
  const enrichResponse = await doFetch(userUrl(options.enrichUrl, input.user_id), {
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  let profile: Record<string, unknown> | null;
  if (enrichResponse.status === 404) {
    await enrichResponse.body?.cancel();
    profile = null;
  } else if (enrichResponse.ok) {
    const parsed: unknown = await enrichResponse.json();
    if (!isPlainObject(parsed)) throw new Error("enrichment: profile is not an object");
    profile = parsed;
  } else {
    await enrichResponse.body?.cancel();
    throw new Error(`enrichment: HTTP ${enrichResponse.status}`);
  }

  const validatorResponse = await doFetch(ingestUrl(options.validatorUrl), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(buildBaselineDocument(input, profile)),
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  const text = await validatorResponse.text();
  if (!validatorResponse.ok) {
    throw new Error(`validator: HTTP ${validatorResponse.status} ${text.slice(0, 200)}`);
  }
}
