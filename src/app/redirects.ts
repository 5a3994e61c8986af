/**
 * Downstream redirects: never followed, logged once per Location, and shown on
 * /readyz (naming the variable to fix) until the target answers without one.
 */
import type { RedirectError } from "../lib/errors.ts";
import type { Logger } from "../lib/logger.ts";

/** The variable that sets each downstream's URL, named in the problem text. */
const REDIRECT_VARIABLE: Record<string, string> = {
  enrichment: "ENRICH_URL",
  validator: "VALIDATOR_URL",
};

/** The problem a redirect shows: "ENRICH_URL redirects to … (HTTP 301)". */
export function redirectProblem(error: RedirectError): string {
  return describeRedirect(REDIRECT_VARIABLE[error.target] ?? error.target, error);
}

/** How `/readyz` and `check-config --probe` name a redirect: "VALIDATOR_URL redirects to …". */
export function describeRedirect(variable: string, error: RedirectError): string {
  return error.location
    ? `${variable} redirects to ${error.location} (HTTP ${error.status})`
    : `${variable} answers with a redirect (HTTP ${error.status})`;
}

/**
 * Which downstreams redirect now: a target redirects from a 3xx answer until it
 * answers anything else. Each (target, Location) pair is reported once through
 * `onNew`, so a redirecting validator logs one line, not one per message.
 */
export class RedirectWatch {
  readonly #current = new Map<string, RedirectError>();
  readonly #reported = new Map<string, Set<string>>();
  readonly #onNew: (error: RedirectError) => void;

  /** `onNew` receives the first redirect to each Location per target. */
  constructor(onNew: (error: RedirectError) => void) {
    this.#onNew = onNew;
  }

  /** For HttpCallOptions.onRedirect. */
  redirected(error: RedirectError): void {
    this.#current.set(error.target, error);
    let seen = this.#reported.get(error.target);
    if (!seen) this.#reported.set(error.target, seen = new Set());
    if (seen.has(error.location) || seen.size >= 16) return; // bounded: a Location may vary per call
    seen.add(error.location);
    this.#onNew(error);
  }

  /** For HttpCallOptions.onResponse: any HTTP answer but a 3xx ends the redirect state. */
  answered(target: string, code: string): void {
    if (/^[124-9]\d\d$/.test(code)) this.#current.delete(target);
  }

  /** The last redirect of each target that redirects now. */
  current(): RedirectError[] {
    return [...this.#current.values()];
  }
}

/** A watch that warns on the first redirect to each Location per target. */
export function watchRedirects(logger: Pick<Logger, "warn">): RedirectWatch {
  return new RedirectWatch((error) =>
    logger.warn("downstream answered with a redirect; redirects are never followed", {
      target: error.target,
      status: error.status,
      location: error.location,
      problem: redirectProblem(error),
    })
  );
}
