/**
 * What every dlq subcommand starts from: the configuration (only the SQS part matters), an SQS
 * client, and the dead-letter queue with how it was found. Failures become one line and an exit
 * code, never a stack trace.
 */
import { collectConfigProblems, type Config } from "../app/config.ts";
import { createSqsClient } from "../app/aws_clients.ts";
import type { SqsClient } from "../adapters/sqs_client.ts";
import { SqsError, TimeoutError } from "../lib/errors.ts";
import { retry } from "../lib/retry.ts";
import { type CliDeps, cliRetry } from "./cli_deps.ts";
import { parseQueueArn, sameQueue } from "./dlq_select.ts";
import { dlqTrust, policyNames, type PolicyTarget } from "./dlq_trust.ts";

export interface DlqSession {
  sqs: SqsClient;
  config: Config;
  queueUrl: string;
  dlqUrl: string;
  /** How the DLQ was found, for the operator. */
  dlqSource: string;
  maxReceiveCount: number | undefined;
}

/** A RedrivePolicy's DLQ name, owner account and maxReceiveCount; undefined if unreadable. */
export function parseRedrivePolicy(
  raw: string | undefined,
): { name: string; account: string | undefined; maxReceiveCount: number | undefined } | undefined {
  if (!raw) return undefined;
  let policy: { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
  try {
    policy = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const arn = parseQueueArn(String(policy.deadLetterTargetArn ?? ""));
  if (!arn) return undefined;
  return {
    name: arn.name,
    account: arn.account,
    maxReceiveCount: Number(policy.maxReceiveCount) || undefined,
  };
}

/** One line for a failed SQS call: unreachable, no credentials, or what SQS refused. */
export function describeSqsFailure(error: unknown, action: string, url: string): string {
  if (error instanceof SqsError && error.code === "NetworkError") {
    return `SQS is unreachable (${action}): ${error.detail}`;
  }
  if (error instanceof TimeoutError) {
    return `SQS is unreachable at ${new URL(url).origin}: ${error.message}`;
  }
  if (error instanceof SqsError && error.code === "CredentialsError") {
    return `no AWS credentials: ${error.message}`;
  }
  if (error instanceof SqsError) {
    return `SQS refused ${action} on ${url}: ${error.code}${
      error.message ? `: ${error.message}` : ""
    }`;
  }
  return `${action} on ${url} failed: ${(error as Error)?.message ?? String(error)}`;
}

/** Whether SQS could not be reached at all (as opposed to refusing a request). */
export function isUnreachable(error: unknown): boolean {
  return error instanceof TimeoutError ||
    (error instanceof SqsError && ["NetworkError", "CredentialsError"].includes(error.code));
}

/** How strictly a command checks that the DLQ is the main queue's (see dlq_trust.ts). */
export interface DlqCheck {
  /** Refuse an unproven DLQ (exit 2); else only warn. */
  strict: boolean;
  /** `--allow-any-dlq`: go on with an unproven DLQ, saying so. */
  allowAnyDlq: boolean;
}

/** The session, or the exit code after printing why there is none. */
export async function openDlq(deps: CliDeps, check: DlqCheck): Promise<DlqSession | number> {
  // The dlq subcommands never call the downstreams: their URLs need not be set.
  const env = {
    ENRICH_URL: "http://unused.invalid",
    VALIDATOR_URL: "http://unused.invalid",
    ...deps.env,
  };
  const { config, problems } = collectConfigProblems(env);
  if (!config) {
    for (const problem of problems) deps.err(`sluice: ${problem}`);
    return 2;
  }
  const sqs = createSqsClient(config, {
    env: deps.env,
    readTextFile: deps.readTextFile,
    homeDir: deps.homeDir,
    clock: deps.clock,
  });
  const read = await readPolicy(sqs, config, deps);
  if (typeof read === "number") return read;
  const policy = typeof read === "string" ? undefined : read;
  const found = await findDlq(sqs, config, policy, deps);
  if (typeof found === "number") return found;
  if (sameQueue(found.url, config.queueUrl)) {
    deps.err(
      `sluice: the dead-letter queue ${found.url} (${found.source}) is the main queue ` +
        `SQS_QUEUE_URL: refusing to run dlq commands on it`,
    );
    return 2;
  }
  const session = {
    sqs,
    config,
    queueUrl: config.queueUrl,
    dlqUrl: found.url,
    dlqSource: found.source,
    maxReceiveCount: policy?.maxReceiveCount,
  };
  if (!config.dlqQueueUrl) return session;
  const refused = await checkTrust(session, read, check, deps);
  return refused ?? session;
}

/**
 * The main queue's RedrivePolicy, "none" without a readable one, "unread" when the read was
 * refused but DLQ_QUEUE_URL lets the command go on; an exit code otherwise.
 */
async function readPolicy(
  sqs: SqsClient,
  config: Config,
  deps: CliDeps,
): Promise<NonNullable<ReturnType<typeof parseRedrivePolicy>> | "none" | "unread" | number> {
  try {
    const attributes = await retry(
      () => sqs.getQueueAttributes(config.queueUrl, ["RedrivePolicy"], deps.signal),
      cliRetry(deps),
    );
    return parseRedrivePolicy(attributes.RedrivePolicy) ?? "none";
  } catch (error) {
    const line = describeSqsFailure(error, "GetQueueAttributes", config.queueUrl);
    // With DLQ_QUEUE_URL set, a refused read of the main queue (IAM) need not stop a DLQ command.
    if (isUnreachable(error) || !config.dlqQueueUrl) {
      deps.err(`sluice: ${line}`);
      return 1;
    }
    deps.err(`sluice: warning: ${line}`);
    return "unread";
  }
}

/**
 * Checks that DLQ_QUEUE_URL is the main queue's DLQ (dlq_trust.ts): adds how to the session's
 * dlqSource, or prints why not and returns 2 when the command must refuse it.
 */
async function checkTrust(
  session: DlqSession,
  policy: PolicyTarget,
  check: DlqCheck,
  deps: CliDeps,
): Promise<number | undefined> {
  let sources: string[] | string = [];
  if (!policyNames(policy, session.dlqUrl)) {
    try {
      sources = await retry(
        () => session.sqs.listDeadLetterSourceQueues(session.dlqUrl, deps.signal),
        cliRetry(deps),
      );
    } catch (error) {
      if (isUnreachable(error)) {
        deps.err(
          `sluice: ${describeSqsFailure(error, "ListDeadLetterSourceQueues", session.dlqUrl)}`,
        );
        return 1;
      }
      sources = error instanceof SqsError
        ? error.message
        : `ListDeadLetterSourceQueues failed: ${String(error)}`;
    }
  }
  const trust = dlqTrust({ dlqUrl: session.dlqUrl, queueUrl: session.queueUrl, policy, sources });
  if (trust.trusted) {
    session.dlqSource += `, ${trust.how}`;
    return undefined;
  }
  if (check.allowAnyDlq) {
    deps.err(`sluice: warning: ${trust.why}; going on (--allow-any-dlq)`);
    return undefined;
  }
  if (!check.strict) {
    deps.err(`sluice: warning: ${trust.why}`);
    return undefined;
  }
  deps.err(`sluice: ${trust.why}; add --allow-any-dlq to use it anyway`);
  return 2;
}

async function findDlq(
  sqs: SqsClient,
  config: Config,
  policy: ReturnType<typeof parseRedrivePolicy>,
  deps: CliDeps,
): Promise<{ url: string; source: string } | number> {
  if (config.dlqQueueUrl) return { url: config.dlqQueueUrl, source: "DLQ_QUEUE_URL" };
  if (!policy) {
    deps.err(
      "sluice: no dead-letter queue: the queue has no RedrivePolicy and DLQ_QUEUE_URL is not set",
    );
    return 2;
  }
  try {
    const url = await retry(
      () => sqs.getQueueUrl(policy.name, policy.account, deps.signal),
      cliRetry(deps),
    );
    return { url, source: `the queue's RedrivePolicy (${policy.name})` };
  } catch (error) {
    deps.err(`sluice: ${describeSqsFailure(error, "GetQueueUrl", config.queueUrl)}`);
    return 1;
  }
}

/** Visible, in-flight and delayed counts of a queue. */
export async function queueDepth(
  session: DlqSession,
  url: string,
  deps: CliDeps,
): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const a = await retry(
    () =>
      session.sqs.getQueueAttributes(url, [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
      ], deps.signal),
    cliRetry(deps),
  );
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}
