import assert from "node:assert/strict";
import { nextSqsError, sqsFailed, SqsObserver } from "../../src/app/sqs_observer.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";

// [result, SQS itself is unwell (a failure for the SQS breaker)]
const failedRows: Array<[string, boolean]> = [
  ["ok", false],
  ["network", true],
  ["timeout", true],
  ["ThrottlingException", true],
  ["RequestThrottled", true],
  ["InternalError", true],
  ["ServiceUnavailable", true],
  ["KMS.Overloaded", true],
  ["503", true],
  ["AccessDenied", false],
  ["ReceiptHandleIsInvalid", false],
  ["aborted", false],
  ["redirect", true],
  ["too_large", true],
];
for (const [result, failed] of failedRows) {
  Deno.test(`sqs observer: '${result}' is ${failed ? "" : "not "}a failure of SQS`, () => {
    assert.equal(sqsFailed(result), failed);
  });
}

// [name, last error before, action, result, last error after]
const errorRows: Array<[string, string | undefined, string, string, string | undefined]> = [
  [
    "a failed receive is the last error",
    undefined,
    "ReceiveMessage",
    "AccessDenied",
    "ReceiveMessage: AccessDenied",
  ],
  [
    "a later failure replaces it",
    "ReceiveMessage: network",
    "ReceiveMessage",
    "timeout",
    "ReceiveMessage: timeout",
  ],
  ["a successful receive clears it", "ReceiveMessage: network", "ReceiveMessage", "ok", undefined],
  [
    "an aborted receive (a stop) changes nothing",
    "ReceiveMessage: network",
    "ReceiveMessage",
    "aborted",
    "ReceiveMessage: network",
  ],
  [
    "a stale receipt is about one message, not SQS",
    undefined,
    "ReceiveMessage",
    "ReceiptHandleIsInvalid",
    undefined,
  ],
  ["MessageNotInflight neither", undefined, "ReceiveMessage", "MessageNotInflight", undefined],
  [
    "the queue-depth poll never sets it",
    undefined,
    "GetQueueAttributes",
    "AccessDenied",
    undefined,
  ],
  [
    "nor clears it",
    "ReceiveMessage: network",
    "GetQueueAttributes",
    "ok",
    "ReceiveMessage: network",
  ],
  ["deletes neither", undefined, "DeleteMessageBatch", "network", undefined],
];
for (const [name, before, action, result, after] of errorRows) {
  Deno.test(`sqs observer: ${name}`, () => {
    assert.equal(nextSqsError(before, action, result), after);
  });
}

Deno.test("sqs observer: counts every request, samples the breaker, notes readiness on a change only", () => {
  const counted: Array<Record<string, string>> = [];
  const samples: Array<[boolean, string | undefined]> = [];
  let notes = 0;
  const observer = new SqsObserver({
    ports: {
      breaker: { record: (ok, error) => samples.push([ok, error as string | undefined]) },
      onReadinessChange: () => notes++,
    },
    services: {
      metrics: { sqsRequests: { inc: (labels: Record<string, string>) => counted.push(labels) } },
    } as unknown as ConstructorParameters<typeof SqsObserver>[0]["services"],
  });
  observer.observe("ReceiveMessage", "network");
  observer.observe("ReceiveMessage", "timeout");
  observer.observe("DeleteMessageBatch", "ok");
  observer.observe("ReceiveMessage", "ok");
  assert.deepEqual(counted.map((l) => `${l.action} ${l.result}`), [
    "ReceiveMessage network",
    "ReceiveMessage timeout",
    "DeleteMessageBatch ok",
    "ReceiveMessage ok",
  ]);
  assert.deepEqual(samples, [
    [false, "ReceiveMessage: network"],
    [false, "ReceiveMessage: timeout"],
    [true, undefined],
    [true, undefined],
  ]);
  assert.equal(notes, 2, "once when the error appeared, once when it cleared");
  assert.equal(observer.lastError, undefined);
});

Deno.test("sqs observer: the result label is one of a fixed set, whatever code the endpoint invents", () => {
  const metrics = createSluiceMetrics();
  const observer = new SqsObserver({
    ports: { breaker: { record: () => {} }, onReadinessChange: () => {} },
    services: { metrics },
  });
  const invented = Array.from({ length: 500 }, (_, i) => `Weird${i}${"x".repeat(i % 7)}`);
  for (const code of invented) observer.observe("ReceiveMessage", code);
  for (const code of ["ThrottlingException", "QueueDoesNotExist", "Http503", "redirect", "ok"]) {
    observer.observe("ReceiveMessage", code);
  }
  const series = metrics.registry.render().split("\n").filter((line) =>
    line.startsWith('sluice_sqs_requests_total{action="ReceiveMessage"')
  );
  assert.deepEqual(series.sort(), [
    'sluice_sqs_requests_total{action="ReceiveMessage",result="QueueDoesNotExist"} 1',
    'sluice_sqs_requests_total{action="ReceiveMessage",result="ThrottlingException"} 1',
    'sluice_sqs_requests_total{action="ReceiveMessage",result="error"} 501',
    'sluice_sqs_requests_total{action="ReceiveMessage",result="ok"} 1',
    'sluice_sqs_requests_total{action="ReceiveMessage",result="redirect"} 1',
  ]);
});

Deno.test("sqs observer: a receive that got no answer is named by its failure and host, in /readyz and the breaker", () => {
  const samples: Array<string | undefined> = [];
  const observer = new SqsObserver({
    ports: {
      breaker: { record: (_ok, error) => samples.push(error as string | undefined) },
      onReadinessChange: () => {},
    },
    services: { metrics: { sqsRequests: { inc: () => {} } } as never },
  });
  observer.observe("ReceiveMessage", "network", 3, "DNS lookup of sqs.example failed");
  assert.equal(observer.lastError, "ReceiveMessage: DNS lookup of sqs.example failed");
  assert.deepEqual(samples, ["ReceiveMessage: DNS lookup of sqs.example failed"]);
  assert.equal(nextSqsError(undefined, "ReceiveMessage", "timeout"), "ReceiveMessage: timeout");
});
