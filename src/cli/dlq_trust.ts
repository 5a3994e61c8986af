/**
 * Whether the dead-letter queue the dlq commands were given is the main queue's: the target of
 * its RedrivePolicy, or a queue whose ListDeadLetterSourceQueues lists it. A DLQ_QUEUE_URL that
 * is neither may be a typo or another team's queue; purge and redrive refuse it (exit 2) unless
 * told `--allow-any-dlq`, peek and stats warn. Pure: the caller asks SQS.
 */
import { queueKey, sameQueue } from "./dlq_select.ts";

/** The main queue's RedrivePolicy target, `"none"` without a readable one, `"unread"` if refused. */
export type PolicyTarget = { name: string; account: string | undefined } | "none" | "unread";

export type DlqTrust = { trusted: true; how: string } | { trusted: false; why: string };

/** Whether the RedrivePolicy target names the queue at `dlqUrl`. */
export function policyNames(policy: PolicyTarget, dlqUrl: string): boolean {
  if (typeof policy === "string") return false;
  const [account, name] = queueKey(dlqUrl).split("/");
  return name === policy.name && (policy.account === undefined || account === policy.account);
}

/**
 * The verdict on `dlqUrl` for `queueUrl`. `sources` is what ListDeadLetterSourceQueues answered
 * on the DLQ, or the line saying how it failed (not asked when the policy settles it).
 */
export function dlqTrust(o: {
  dlqUrl: string;
  queueUrl: string;
  policy: PolicyTarget;
  sources: string[] | string;
}): DlqTrust {
  if (policyNames(o.policy, o.dlqUrl)) {
    return { trusted: true, how: "the target of the queue's RedrivePolicy" };
  }
  if (Array.isArray(o.sources) && o.sources.some((url) => sameQueue(url, o.queueUrl))) {
    return { trusted: true, how: "ListDeadLetterSourceQueues lists SQS_QUEUE_URL" };
  }
  const policy = o.policy === "unread"
    ? "the queue's RedrivePolicy could not be read"
    : o.policy === "none"
    ? "the queue has no RedrivePolicy"
    : `the queue's RedrivePolicy targets ${o.policy.name}`;
  const sources = typeof o.sources === "string"
    ? o.sources
    : "ListDeadLetterSourceQueues on it does not list the queue";
  return {
    trusted: false,
    why: `DLQ_QUEUE_URL ${o.dlqUrl} is not the dead-letter queue of SQS_QUEUE_URL ${o.queueUrl}: ` +
      `${policy}, and ${sources}`,
  };
}
