import assert from "node:assert/strict";
import { sourceOf } from "../../src/cli/dlq_sources.ts";

const Q = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders";

const rows: Array<[string, string | undefined, ReturnType<typeof sourceOf>]> = [
  ["no source attribute: sluice dead-lettered it from SQS_QUEUE_URL", undefined, { url: Q }],
  ["an empty attribute likewise", "", { url: Q }],
  ["the main queue's ARN: no lookup", "arn:aws:sqs:eu-west-1:123456789012:orders", { url: Q }],
  [
    "another source queue: looked up by name and owner",
    "arn:aws:sqs:eu-west-1:123456789012:payments",
    { lookup: { name: "payments", account: "123456789012" } },
  ],
  [
    "the same name in another account is another queue",
    "arn:aws:sqs:eu-west-1:999999999999:orders",
    { lookup: { name: "orders", account: "999999999999" } },
  ],
  ["not an ARN: the message stays", "orders", {
    error: 'unreadable DeadLetterQueueSourceArn "orders"',
  }],
];
for (const [name, arn, expected] of rows) {
  Deno.test(`dlq sources: sourceOf: ${name}`, () => assert.deepEqual(sourceOf(arn, Q), expected));
}
