import assert from "node:assert/strict";
import { dlqTrust, policyNames, type PolicyTarget } from "../../src/cli/dlq_trust.ts";

const Q = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders";
const DLQ = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-dlq";
const OTHER = "https://sqs.eu-west-1.amazonaws.com/123456789012/payments-dlq";
const target = (name: string, account: string | undefined = "123456789012") => ({ name, account });

const rows: Array<[string, PolicyTarget, string[] | string, string, boolean]> = [
  ["the RedrivePolicy targets it", target("orders-dlq"), [], DLQ, true],
  ["the RedrivePolicy targets it, account unsaid", target("orders-dlq", undefined), [], DLQ, true],
  ["same name in another account", target("orders-dlq", "999999999999"), [], DLQ, false],
  ["the policy targets another queue", target("orders-dlq"), [], OTHER, false],
  ["ListDeadLetterSourceQueues lists the queue", "unread", [Q], OTHER, true],
  [
    "listed in another host form",
    "none",
    ["https://eu-west-1.queue.amazonaws.com/123456789012/orders/"],
    OTHER,
    true,
  ],
  ["listed: only other queues", "none", [`${Q}-v2`], OTHER, false],
  [
    "the list was refused",
    "unread",
    "SQS ListDeadLetterSourceQueues failed: AccessDenied (HTTP 403)",
    OTHER,
    false,
  ],
];
for (const [name, policy, sources, dlqUrl, trusted] of rows) {
  Deno.test(`dlq trust: ${name}`, () => {
    assert.equal(dlqTrust({ dlqUrl, queueUrl: Q, policy, sources }).trusted, trusted);
  });
}

Deno.test("dlq trust: an untrusted DLQ is one line naming both queues, the policy and the list", () => {
  const why = (policy: PolicyTarget, sources: string[] | string) => {
    const t = dlqTrust({ dlqUrl: OTHER, queueUrl: Q, policy, sources });
    assert.ok(!t.trusted);
    assert.doesNotMatch(t.why, /\n/);
    assert.ok(t.why.includes(OTHER) && t.why.includes(Q), t.why);
    return t.why;
  };
  assert.match(
    why(target("orders-dlq"), []),
    /RedrivePolicy targets orders-dlq, and ListDeadLetterSourceQueues on it does not list the queue$/,
  );
  assert.match(why("none", []), /the queue has no RedrivePolicy/);
  assert.match(
    why("unread", "SQS ListDeadLetterSourceQueues failed: AccessDenied (HTTP 403)"),
    /could not be read, and SQS ListDeadLetterSourceQueues failed: AccessDenied \(HTTP 403\)$/,
  );
});

Deno.test("dlq trust: policyNames compares account and name, never a prefix", () => {
  assert.ok(policyNames(target("orders-dlq"), `${DLQ}/`));
  assert.ok(!policyNames(target("orders"), DLQ));
  assert.ok(!policyNames("none", DLQ));
});
