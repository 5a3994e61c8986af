/**
 * Downstream redirects: never followed, logged once per Location, and shown on
 * /readyz (naming the variable to fix) until the target answers without one.
 */
import { describeRedirect, RedirectWatch } from "../adapters/http_call.ts";
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
