import assert from "node:assert/strict";
import { healthOf, type HealthSnapshot, Readiness } from "../../src/app/health.ts";
import { RedirectError } from "../../src/lib/errors.ts";

const ready: HealthSnapshot = {
  starting: false,
  pipelineAlive: true,
  redrive: { known: true, pending: undefined },
  breakers: [
    { name: "enrichment", state: "closed", remainingCooldownMs: 0 },
    { name: "validator", state: "closed", remainingCooldownMs: 0 },
    { name: "sqs", state: "closed", remainingCooldownMs: 0 },
  ],
  redirects: [],
  lastSqsError: undefined,
};

const open = (name: string, ms: number) => ({
  name,
  state: "open" as const,
  remainingCooldownMs: ms,
});

// [name, changes to a ready snapshot, alive, reasons]
const rows: Array<[string, Partial<HealthSnapshot>, boolean, string[]]> = [
  ["everything fine: alive and ready", {}, true, []],
  [
    "the receive loop stopped: not alive, no reason of its own",
    { pipelineAlive: false },
    false,
    [],
  ],
  [
    "starting: alive (a slow startup must not fail /healthz), not ready, redrive not named",
    { starting: true, pipelineAlive: false, redrive: { known: false, pending: "not read yet" } },
    true,
    ["starting: reading the queue's attributes"],
  ],
  [
    "redrive policy not read yet, with why",
    { redrive: { known: false, pending: "AccessDenied" } },
    true,
    ["redrive policy not read yet: AccessDenied"],
  ],
  [
    "redrive policy not known and no reason: 'unknown'",
    { redrive: { known: false, pending: undefined } },
    true,
    ["redrive policy not read yet: unknown"],
  ],
  [
    "redrive policy read, its DLQ not found yet",
    { redrive: { known: true, pending: "DLQ URL not found yet: AccessDenied" } },
    true,
    ["redrive policy read, DLQ URL not found yet: AccessDenied"],
  ],
  [
    "an open breaker with its next probe rounded up to whole seconds",
    { breakers: [open("validator", 1001)] },
    true,
    ["validator circuit breaker is open (next probe in 2 s)"],
  ],
  [
    "half-open breakers are not a reason",
    { breakers: [{ name: "sqs", state: "half_open", remainingCooldownMs: 0 }] },
    true,
    [],
  ],
  [
    "a redirecting downstream names the variable to fix",
    { redirects: [new RedirectError("validator", 301, "https://new.example/ingest")] },
    true,
    ["VALIDATOR_URL redirects to https://new.example/ingest (HTTP 301)"],
  ],
  [
    "a redirect without a Location",
    { redirects: [new RedirectError("enrichment", 302, "")] },
    true,
    ["ENRICH_URL answers with a redirect (HTTP 302)"],
  ],
  [
    "the last SQS error",
    { lastSqsError: "ReceiveMessage: AccessDenied" },
    true,
    ["last SQS request failed: ReceiveMessage: AccessDenied"],
  ],
  [
    "a region mismatch is named first while the DLQ is not found, as SQS's errors never say it",
    {
      redrive: { known: true, pending: "DLQ URL not found yet: QueueDoesNotExist" },
      regionMismatch: "AWS_REGION=eu-west-1 does not match the queue URL's region us-east-1",
    },
    true,
    [
      "AWS_REGION=eu-west-1 does not match the queue URL's region us-east-1",
      "redrive policy read, DLQ URL not found yet: QueueDoesNotExist",
    ],
  ],
  [
    "a region mismatch is named with a failing receive",
    { lastSqsError: "ReceiveMessage: QueueDoesNotExist", regionMismatch: "AWS_REGION=x differs" },
    true,
    ["AWS_REGION=x differs", "last SQS request failed: ReceiveMessage: QueueDoesNotExist"],
  ],
  [
    "a region mismatch SQS does not mind (an emulator) is no reason",
    { regionMismatch: "AWS_REGION=x differs" },
    true,
    [],
  ],
  [
    "every reason at once, in /readyz's order",
    {
      redrive: { known: false, pending: "throttled" },
      breakers: [open("enrichment", 5000), open("sqs", 0)],
      redirects: [new RedirectError("validator", 308, "http://x/")],
      lastSqsError: "ReceiveMessage: network",
    },
    true,
    [
      "redrive policy not read yet: throttled",
      "enrichment circuit breaker is open (next probe in 5 s)",
      "sqs circuit breaker is open (next probe in 0 s)",
      "VALIDATOR_URL redirects to http://x/ (HTTP 308)",
      "last SQS request failed: ReceiveMessage: network",
    ],
  ],
];

for (const [name, change, alive, reasons] of rows) {
  Deno.test(`health: ${name}`, () => {
    assert.deepEqual(healthOf({ ...ready, ...change }), { alive, notReady: reasons });
  });
}

Deno.test("health: Readiness logs a change only after startup, and with the reasons", () => {
  let snapshot: HealthSnapshot = { ...ready, starting: true };
  const logged: Array<[boolean, string[]]> = [];
  const readiness = new Readiness({
    readiness: (isReady, reasons) => logged.push([isReady, reasons]),
  });
  readiness.note();
  assert.deepEqual(
    readiness.health(),
    { alive: true, notReady: ["starting"] },
    "not observing yet",
  );
  readiness.observe(() => snapshot);
  readiness.note();
  assert.deepEqual(logged, [], "nothing while starting");
  snapshot = { ...ready, lastSqsError: "ReceiveMessage: network" };
  readiness.note();
  snapshot = { ...ready, pipelineAlive: false };
  readiness.note();
  snapshot = ready;
  readiness.note();
  assert.deepEqual(logged, [
    [false, ["last SQS request failed: ReceiveMessage: network"]],
    [false, []],
    [true, []],
  ]);
  assert.deepEqual(readiness.health(), { alive: true, notReady: [] });
});
