/**
 * Variables that look like sluice's but are not: a misspelling (`SQS_VISIBILITY_TIMEOUT`) is
 * otherwise silently ignored and the default used. Pure functions.
 */

/** Prefixes of sluice's own variables; an unknown name with one of them is probably a slip. */
const PREFIXES = [
  "SQS_",
  "AWS_",
  "ENRICH_",
  "VALIDATOR_",
  "DLQ_",
  "HTTP_",
  "LOG_",
  "CACHE_",
  "DEDUP_",
  "DELETE_",
  "UNKNOWN_",
  "MAX_",
  "SHUTDOWN_",
  "SLUICE_",
];

/** Variables other tools read (the AWS CLI, deploy.sh); sluice ignores them on purpose. */
const AWS_OTHER = new Set([
  "SLUICE_IP_ALLOW",
  "AWS_PAGER",
  "AWS_DEFAULT_OUTPUT",
  "AWS_CLI_AUTO_PROMPT",
  "AWS_CA_BUNDLE",
  "AWS_EXECUTION_ENV",
  "AWS_MAX_ATTEMPTS",
  "AWS_RETRY_MODE",
  "AWS_EC2_METADATA_DISABLED",
]);

/** Credential sources the AWS SDKs know and sluice does not: say so rather than ignore them. */
const UNSUPPORTED: Record<string, string> = {
  AWS_CONFIG_FILE: "~/.aws/config is not read: use AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE",
  AWS_ROLE_ARN: "web identity and assumed roles are not supported",
  AWS_WEB_IDENTITY_TOKEN_FILE: "web identity and assumed roles are not supported",
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "container credentials are not supported",
  AWS_CONTAINER_CREDENTIALS_FULL_URI: "container credentials are not supported",
  AWS_SDK_LOAD_CONFIG: "~/.aws/config (SSO, credential_process) is not supported",
};

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The known name nearest to `name` (ties: the first in `known`). */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** One warning line per unknown variable in `env` that looks like one of `known`. */
export function lintEnvNames(
  env: Record<string, string | undefined>,
  known: readonly string[],
): string[] {
  const knownSet = new Set(known);
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (knownSet.has(name) || AWS_OTHER.has(name)) continue;
    const unsupported = UNSUPPORTED[name];
    if (unsupported) {
      warnings.push(`${name} is set but ignored: ${unsupported}`);
      continue;
    }
    if (!PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    const nearest = nearestName(name, known);
    // Far from every AWS_ name sluice reads, an AWS_ variable is some other tool's.
    if (name.startsWith("AWS_") && nearest && editDistance(name, nearest) > 4) continue;
    warnings.push(
      `${name} is not a sluice variable and is ignored${
        nearest ? `; did you mean ${nearest}?` : ""
      }`,
    );
  }
  return warnings;
}
