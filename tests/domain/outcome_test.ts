import assert from "node:assert/strict";
import {
  type Action,
  holdMustEnd,
  isLastReceive,
  releaseVisibilitySeconds,
  route,
  type RouteContext,
  type Verdict,
} from "../../src/domain/outcome.ts";

const ctx: RouteContext = {
  receiveCount: 1,
  redriveKnown: true,
  maxReceiveCount: 3,
  hasDlq: true,
  deleteOn4xx: false,
  deleteOn5xx: false,
  unknownUserPolicy: "submit",
};
const transient: Verdict = {
  kind: "gave_up",
  target: "enrichment",
  category: "TRANSIENT",
  reason: "503",
  validator5xx: false,
};
const validator5xx: Verdict = { ...transient, target: "validator", validator5xx: true };
const RELEASE_NOW: Action = {
  kind: "release",
  category: "TRANSIENT",
  reason: "shutdown",
  visibility: "now",
};
const REQUEUE: Action = { kind: "requeue", reason: "shutdown: re-queued as a fresh copy" };

// One row per line of docs/outcomes.md.
const rows: Array<[string, Verdict, Partial<RouteContext>, Action]> = [
  ["2xx deletes", { kind: "accepted" }, {}, { kind: "delete", outcome: "accepted" }],
  ["duplicate deletes", { kind: "duplicate" }, {}, { kind: "delete", outcome: "duplicate" }],
  [
    "poison dead-letters",
    { kind: "poison", reason: "bad" },
    {},
    { kind: "dead_letter", category: "VALIDATION", reason: "bad" },
  ],
  [
    "poison without a DLQ is released for as long as possible",
    { kind: "poison", reason: "bad" },
    { hasDlq: false },
    { kind: "release", category: "VALIDATION", reason: "bad", visibility: "longest" },
  ],
  [
    "4xx is released for a fixed build",
    { kind: "rejected", reason: "HTTP 400: x" },
    {},
    { kind: "release", category: "REJECTED", reason: "HTTP 400: x", visibility: "backoff" },
  ],
  [
    "4xx on the last receive dead-letters with the reason",
    { kind: "rejected", reason: "HTTP 400: x" },
    { receiveCount: 3 },
    { kind: "dead_letter", category: "REJECTED", reason: "HTTP 400: x" },
  ],
  [
    "4xx with DELETE_ON_4XX deletes",
    { kind: "rejected", reason: "HTTP 400: x" },
    { deleteOn4xx: true },
    { kind: "delete", outcome: "rejected_deleted", category: "REJECTED", reason: "HTTP 400: x" },
  ],
  [
    "unknown user, dead-letter",
    { kind: "unknown_user" },
    { unknownUserPolicy: "dead-letter" },
    { kind: "dead_letter", category: "UNKNOWN_USER", reason: "unknown user" },
  ],
  [
    "unknown user, drop",
    { kind: "unknown_user" },
    { unknownUserPolicy: "drop" },
    { kind: "delete", outcome: "dropped", category: "UNKNOWN_USER", reason: "unknown user" },
  ],
  [
    "transient failure is released with backoff",
    transient,
    {},
    { kind: "release", category: "TRANSIENT", reason: "503", visibility: "backoff" },
  ],
  ["transient failure on the last receive is held", transient, { receiveCount: 3 }, {
    kind: "hold",
  }],
  [
    "validator 5xx with DELETE_ON_5XX deletes",
    validator5xx,
    { deleteOn5xx: true },
    { kind: "delete", outcome: "deleted_5xx", category: "TRANSIENT", reason: "503" },
  ],
  [
    "enrichment 5xx ignores DELETE_ON_5XX",
    transient,
    { deleteOn5xx: true },
    { kind: "release", category: "TRANSIENT", reason: "503", visibility: "backoff" },
  ],
  [
    "no redrive policy: never held",
    transient,
    { receiveCount: 50, maxReceiveCount: undefined },
    { kind: "release", category: "TRANSIENT", reason: "503", visibility: "backoff" },
  ],
  [
    "permanent enrichment error on the last receive dead-letters",
    { ...transient, category: "PERMANENT", reason: "HTTP 400" },
    { receiveCount: 3 },
    { kind: "dead_letter", category: "PERMANENT", reason: "HTTP 400" },
  ],
  // The RedrivePolicy could not be read yet. "Unknown" is not "none": every receive is
  // possibly the last, so nothing transient is released.
  [
    "redrive policy not read yet: a transient failure on the first receive is held",
    transient,
    { redriveKnown: false, maxReceiveCount: undefined, receiveCount: 1 },
    { kind: "hold" },
  ],
  [
    "redrive policy not read yet: held even on the 50th receive",
    transient,
    { redriveKnown: false, maxReceiveCount: undefined, receiveCount: 50 },
    { kind: "hold" },
  ],
  [
    "redrive policy not read yet: a 4xx with a DLQ is dead-lettered with its reason",
    { kind: "rejected", reason: "HTTP 400: x" },
    { redriveKnown: false, maxReceiveCount: undefined },
    { kind: "dead_letter", category: "REJECTED", reason: "HTTP 400: x" },
  ],
  [
    "redrive policy not read yet: a 4xx without a DLQ is released (nothing else can take it)",
    { kind: "rejected", reason: "HTTP 400: x" },
    { redriveKnown: false, maxReceiveCount: undefined, hasDlq: false },
    { kind: "release", category: "REJECTED", reason: "HTTP 400: x", visibility: "backoff" },
  ],
  [
    "redrive policy not read yet: DELETE_ON_5XX still deletes a validator 5xx",
    validator5xx,
    { redriveKnown: false, maxReceiveCount: undefined, deleteOn5xx: true },
    { kind: "delete", outcome: "deleted_5xx", category: "TRANSIENT", reason: "503" },
  ],
  [
    "last receive, held 11 h so far: held again",
    transient,
    { receiveCount: 3, hold: { secondsSinceReceive: 11 * 3600, visibilityTimeoutSeconds: 30 } },
    { kind: "hold" },
  ],
  [
    "last receive, the next round would pass SQS's 12 h cap: dead-lettered with the reason",
    transient,
    { receiveCount: 3, hold: { secondsSinceReceive: 43_190, visibilityTimeoutSeconds: 30 } },
    {
      kind: "dead_letter",
      category: "TRANSIENT",
      reason: "still failing after 12 h on its last receive: 503",
    },
  ],
  [
    "last receive near the 12 h cap without a DLQ: released for as long as SQS allows",
    transient,
    {
      receiveCount: 3,
      hasDlq: false,
      hold: { secondsSinceReceive: 43_190, visibilityTimeoutSeconds: 30 },
    },
    {
      kind: "release",
      category: "TRANSIENT",
      reason: "still failing after 12 h on its last receive: 503",
      visibility: "longest",
    },
  ],
  [
    "redrive policy not read yet, no DLQ known: poison comes back after a backoff, not in 12 h",
    { kind: "poison", reason: "bad" },
    { redriveKnown: false, maxReceiveCount: undefined, hasDlq: false },
    { kind: "release", category: "VALIDATION", reason: "bad", visibility: "backoff" },
  ],
  [
    "a queue known to have no DLQ: poison is kept away as long as SQS allows",
    { kind: "poison", reason: "bad" },
    { redriveKnown: true, maxReceiveCount: undefined, hasDlq: false },
    { kind: "release", category: "VALIDATION", reason: "bad", visibility: "longest" },
  ],
  [
    "rate limited on an early receive: deferred until its slot, not a failure",
    { kind: "deferred", seconds: 7 },
    { receiveCount: 2 },
    { kind: "defer", seconds: 7, reason: "rate limited: its key's next slot is in 7 s" },
  ],
  [
    "rate limited on its last receive: held, never released toward the redrive policy",
    { kind: "deferred", seconds: 7 },
    { receiveCount: 3, hold: { secondsSinceReceive: 60, visibilityTimeoutSeconds: 30 } },
    { kind: "hold" },
  ],
  [
    "rate limited while the redrive policy is unknown: held",
    { kind: "deferred", seconds: 7 },
    { redriveKnown: false, maxReceiveCount: undefined },
    { kind: "hold" },
  ],
  [
    "rate limited on its last receive near the 12 h cap: re-queued as a fresh copy, never dead-lettered",
    { kind: "deferred", seconds: 7 },
    { receiveCount: 3, hold: { secondsSinceReceive: 43_190, visibilityTimeoutSeconds: 30 } },
    {
      kind: "requeue",
      reason:
        "rate limited: its key's next slot is in 7 s: re-queued as a fresh copy near the 12 h cap",
    },
  ],
];

for (const [name, verdict, overrides, expected] of rows) {
  Deno.test(`route: ${name}`, () => {
    assert.deepEqual(route(verdict, { ...ctx, ...overrides }), expected);
  });
}

Deno.test("route: isLastReceive: unknown redrive is possibly last; no policy never is", () => {
  const base = { receiveCount: 1, maxReceiveCount: undefined };
  assert.equal(isLastReceive({ ...base, redriveKnown: false }), true);
  assert.equal(isLastReceive({ ...base, redriveKnown: true }), false);
  assert.equal(isLastReceive({ receiveCount: 3, maxReceiveCount: 3, redriveKnown: true }), true);
  assert.equal(isLastReceive({ receiveCount: 2, maxReceiveCount: 3, redriveKnown: true }), false);
});

Deno.test("route: release visibility grows with the receive count and stays under 12 h", () => {
  assert.equal(releaseVisibilitySeconds(1, 0), 10);
  assert.equal(releaseVisibilitySeconds(2, 0), 20);
  assert.equal(releaseVisibilitySeconds(3, 0), 40);
  assert.equal(releaseVisibilitySeconds(30, 0), 43195);
  assert.equal(releaseVisibilitySeconds(30, 1000), 42195);
  assert.equal(releaseVisibilitySeconds(1, 100, { visibility: "longest" }), 43095);
  assert.equal(releaseVisibilitySeconds(1, 50000), 0);
});

// What a stop does with a message the grace did not finish.
const shutdownRows: Array<[string, Partial<RouteContext>, Action]> = [
  ["an early receive is released at once", { receiveCount: 1 }, RELEASE_NOW],
  ["the receive before the last is released at once", { receiveCount: 2 }, RELEASE_NOW],
  ["the last allowed receive is re-queued", { receiveCount: 3 }, REQUEUE],
  ["past the last (a late redrive) is re-queued", { receiveCount: 4 }, REQUEUE],
  ["maxReceiveCount 1: every message is re-queued", { maxReceiveCount: 1 }, REQUEUE],
  ["no RedrivePolicy: released whatever the count", {
    receiveCount: 99,
    maxReceiveCount: undefined,
  }, RELEASE_NOW],
  ["RedrivePolicy not read yet: every receive may be the last", {
    maxReceiveCount: undefined,
    redriveKnown: false,
  }, REQUEUE],
];
for (const [name, overrides, expected] of shutdownRows) {
  Deno.test(`route: shutdown: ${name}`, () => {
    assert.deepEqual(
      route({ kind: "hand_back", reason: "shutdown" }, { ...ctx, ...overrides }),
      expected,
    );
  });
}

Deno.test("route: an unexpected error is released with backoff, and dead-lettered with it on the last receive", () => {
  const failed: Verdict = { kind: "failed", reason: "TypeError: x" };
  assert.deepEqual(route(failed, ctx), {
    kind: "release",
    category: "TRANSIENT",
    reason: "unexpected error: TypeError: x",
    visibility: "backoff",
  });
  assert.deepEqual(route(failed, { ...ctx, receiveCount: 3 }), {
    kind: "dead_letter",
    category: "TRANSIENT",
    reason: "unexpected error: TypeError: x",
  });
});

Deno.test("route: a stale receipt is let go: nothing to send", () => {
  assert.equal(route({ kind: "stale" }, { ...ctx, receiveCount: 3 }).kind, "let_go");
});

// A hold ends only when the 12 h cap is near, whatever the visibility timeout.
const holdRows: Array<[number, number, boolean]> = [
  // [seconds since receive, SQS_VISIBILITY_TIMEOUT_SECONDS, must end]
  [60, 30, false],
  [43200 - 34, 30, true],
  [43200 - 40, 30, false],
  [10, 43200, false],
  [10, 21600, false],
  [6 * 3600 + 10, 21600, false],
  [43200 - 400, 43200, false],
  [43200 - 300, 43200, true],
];
for (const [seconds, vt, expected] of holdRows) {
  Deno.test(`route: holdMustEnd(${seconds} s since receive, visibility ${vt} s) is ${expected}`, () => {
    assert.equal(holdMustEnd(seconds, vt), expected);
  });
}
