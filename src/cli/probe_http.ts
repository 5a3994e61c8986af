/**
 * `check-config --probe` for the two HTTP downstreams: it checks what each endpoint is, not only
 * that something answers. The enrichment API answers GET /healthz with 2xx and
 * GET /v1/users/<id> with 200 or 404 JSON; the validator's /ingest exists (an OPTIONS or an
 * empty POST answered 400/405/415/422). No request follows a redirect.
 */

import { RedirectError } from "../lib/errors.ts";
import { fetchNoRedirect, readTextPrefix } from "../lib/guarded_fetch.ts";
import { describeNetworkFailure } from "../lib/network_failure.ts";

/** A probe reads this much of an answer: enough to tell JSON from a login page. */
const MAX_PROBE_BYTES = 64 * 1024;

export interface ProbeResult {
  ok: boolean;
  /** The line shown after "ok" or "FAIL". */
  line: string;
}

/** An id no lab or real user has, so the lookup costs nothing and answers 404. */
export const PROBE_USER_ID = "sluice-check-config-probe";
const INGEST_EXISTS = new Set([400, 405, 415, 422]);

interface Answer {
  status: number;
  location: string | null;
  json: boolean;
  error?: string;
}

async function ask(
  fetcher: typeof fetch,
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<Answer> {
  try {
    const response = await fetchNoRedirect(
      fetcher,
      url,
      url,
      init,
      AbortSignal.timeout(timeoutMs),
    );
    const text = await readTextPrefix(response, MAX_PROBE_BYTES);
    let json = false;
    try {
      JSON.parse(text);
      json = text.trim() !== "";
    } catch {
      json = false;
    }
    return { status: response.status, location: null, json };
  } catch (error) {
    if (error instanceof RedirectError) {
      return { status: error.status, location: error.location || null, json: false };
    }
    return { status: 0, location: null, json: false, error: describeNetworkFailure(error, url) };
  }
}

const redirected = (a: Answer) => a.status >= 300 && a.status < 400;

/** What a base URL is, by its answers. */
export interface Identity {
  health: Answer;
  user: Answer;
  ingest: Answer;
}

export async function identify(
  fetcher: typeof fetch,
  base: string,
  timeoutMs: number,
): Promise<Identity> {
  const root = base.replace(/\/+$/, "");
  const health = await ask(fetcher, `${root}/healthz`, { method: "GET" }, timeoutMs);
  const user = await ask(
    fetcher,
    `${root}/v1/users/${PROBE_USER_ID}`,
    { method: "GET" },
    timeoutMs,
  );
  let ingest = await ask(fetcher, `${root}/ingest`, { method: "OPTIONS" }, timeoutMs);
  if (!INGEST_EXISTS.has(ingest.status) && !redirected(ingest) && ingest.status !== 0) {
    // An empty body is no document: a validator refuses it and ingests nothing.
    ingest = await ask(fetcher, `${root}/ingest`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "",
    }, timeoutMs);
  }
  return { health, user, ingest };
}

export function looksLikeValidator(id: Identity): boolean {
  return INGEST_EXISTS.has(id.ingest.status);
}

export function looksLikeEnrichment(id: Identity): boolean {
  return id.health.status >= 200 && id.health.status < 300 &&
    (id.user.status === 200 || id.user.status === 404) && id.user.json && !looksLikeValidator(id);
}

function show(a: Answer): string {
  if (a.error) return `no answer (${a.error})`;
  return `HTTP ${a.status}${a.json ? " JSON" : ""}`;
}

function failed(line: string): ProbeResult {
  return { ok: false, line };
}

/** When the other variable looks like `what` this one should be: the two are swapped. */
function swapNote(otherLooksSo: boolean, other: "ENRICH_URL" | "VALIDATOR_URL", what: string) {
  return otherLooksSo
    ? `; ${other} looks like ${what}: ENRICH_URL and VALIDATOR_URL are swapped`
    : "";
}

/** The verdict on ENRICH_URL (its identity, and the validator's for the swap line). */
export function enrichVerdict(url: string, id: Identity, validator: Identity): ProbeResult {
  // Nothing answered: the reason once, not once per path.
  if (id.health.error && id.user.error) {
    return failed(`ENRICH_URL ${url} gave no answer: ${id.health.error}`);
  }
  for (const a of [id.health, id.user]) {
    if (redirected(a)) return failed(`ENRICH_URL redirects to ${a.location ?? "?"}`);
  }
  if (looksLikeEnrichment(id)) {
    return {
      ok: true,
      line: `enrichment API: ${url} (/healthz ${show(id.health)}, /v1/users/… ${show(id.user)})`,
    };
  }
  if (looksLikeValidator(id)) {
    const swapped = swapNote(looksLikeEnrichment(validator), "VALIDATOR_URL", "the enrichment API");
    return failed(
      `ENRICH_URL ${url} looks like the validator (/ingest ${show(id.ingest)})${swapped}`,
    );
  }
  return failed(
    `ENRICH_URL ${url} is not the enrichment API: /healthz ${show(id.health)}, ` +
      `/v1/users/${PROBE_USER_ID} ${show(id.user)} (expected 2xx, and 200 or 404 JSON)`,
  );
}

/** The verdict on VALIDATOR_URL (the base of its /ingest URL). */
export function validatorVerdict(ingestUrl: string, id: Identity, enrich: Identity): ProbeResult {
  if (id.ingest.error) {
    return failed(`VALIDATOR_URL ${ingestUrl} gave no answer: ${id.ingest.error}`);
  }
  if (redirected(id.ingest)) {
    return failed(`VALIDATOR_URL redirects to ${id.ingest.location ?? "?"}`);
  }
  if (looksLikeValidator(id)) {
    return {
      ok: true,
      line: `validator: ${ingestUrl} exists (empty submission: ${show(id.ingest)})`,
    };
  }
  if (looksLikeEnrichment(id)) {
    const swapped = swapNote(looksLikeValidator(enrich), "ENRICH_URL", "the validator");
    return failed(`VALIDATOR_URL ${ingestUrl} looks like the enrichment API${swapped}`);
  }
  return failed(
    `VALIDATOR_URL ${ingestUrl} is not the validator: /ingest answered ${show(id.ingest)} ` +
      "(expected 400, 405, 415 or 422 to an empty submission)",
  );
}
