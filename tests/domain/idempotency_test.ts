import assert from "node:assert/strict";
import {
  canonicalJson,
  CLAIM_CONDITION,
  completedExpiresAt,
  type ConflictDecision,
  decideConflict,
  type IdempotencyRecord,
  inProgressExpiresAt,
  LOCK_MARGIN_MS,
  lockUntil,
  waitBeforeLookingAgain,
} from "../../src/domain/idempotency.ts";

const NOW = 1_800_000_000_000;
const rec = (over: Partial<IdempotencyRecord> = {}): IdempotencyRecord => ({
  id: "m-1",
  status: "IN_PROGRESS",
  owner: "w-a:r1",
  inProgressUntil: NOW + 10_000,
  expiresAt: NOW / 1000 + 3600,
  payloadHash: "h1",
  ...over,
});

Deno.test("idempotency: decideConflict, row by row", () => {
  const rows: Array<[string, IdempotencyRecord | undefined, string, ConflictDecision]> = [
    ["no record (deleted since the claim)", undefined, "h1", "claim_again"],
    ["COMPLETED, same payload", rec({ status: "COMPLETED" }), "h1", "duplicate"],
    ["COMPLETED, another payload", rec({ status: "COMPLETED" }), "h2", "mismatch"],
    ["live IN_PROGRESS, same payload", rec(), "h1", "wait"],
    // Our own claim whose answer timed out but which was written.
    ["our own IN_PROGRESS", rec({ owner: "w-b:r2" }), "h1", "ours"],
    ["our own, another payload", rec({ owner: "w-b:r2" }), "h2", "mismatch"],
    ["COMPLETED by us", rec({ owner: "w-b:r2", status: "COMPLETED" }), "h1", "duplicate"],
    ["live IN_PROGRESS, another payload", rec(), "h2", "mismatch"],
    ["lapsed IN_PROGRESS", rec({ inProgressUntil: NOW - 1 }), "h1", "claim_again"],
    ["IN_PROGRESS ending exactly now is still live", rec({ inProgressUntil: NOW }), "h1", "wait"],
    [
      "expired COMPLETED",
      rec({ status: "COMPLETED", expiresAt: NOW / 1000 - 1 }),
      "h1",
      "claim_again",
    ],
    [
      "expired COMPLETED, another payload",
      rec({ status: "COMPLETED", expiresAt: NOW / 1000 - 1 }),
      "h2",
      "claim_again",
    ],
  ];
  for (const [name, record, hash, expected] of rows) {
    assert.equal(decideConflict(record, hash, NOW, "w-b:r2"), expected, name);
  }
});

Deno.test("idempotency: a lock outlives the SQS visibility by the margin; IN_PROGRESS never expires before its lock", () => {
  assert.equal(lockUntil(NOW, 30), NOW + 30_000 + LOCK_MARGIN_MS);
  for (const ttl of [0, 1, 3600]) {
    const until = lockUntil(NOW, 30);
    assert.ok(inProgressExpiresAt(until, ttl) * 1000 > until, `ttl ${ttl}`);
  }
  assert.equal(completedExpiresAt(NOW + 999, 3600), NOW / 1000 + 3600);
});

Deno.test("idempotency: waiting for a live lock: grows, stops at 5 s, never sleeps far past the lock's end", () => {
  assert.equal(waitBeforeLookingAgain(1, undefined, NOW), 250);
  assert.equal(waitBeforeLookingAgain(2, undefined, NOW), 500);
  assert.equal(waitBeforeLookingAgain(10, undefined, NOW), 5000);
  assert.equal(waitBeforeLookingAgain(10, rec({ inProgressUntil: NOW + 1000 }), NOW), 1050);
  assert.equal(waitBeforeLookingAgain(10, rec({ inProgressUntil: NOW - 5000 }), NOW), 50);
});

Deno.test("idempotency: the claim condition compares expiry itself (no reliance on TTL)", () => {
  assert.match(CLAIM_CONDITION, /attribute_not_exists\(id\)/);
  assert.match(CLAIM_CONDITION, /expires_at < :now/);
  assert.match(CLAIM_CONDITION, /in_progress_until < :now_ms/);
});

Deno.test("idempotency: canonicalJson sorts keys at every depth, keeps arrays in order", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [2, 1], c: null } }),
    '{"a":{"c":null,"d":[2,1]},"b":1}',
  );
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  assert.notEqual(canonicalJson({ a: "1" }), canonicalJson({ a: 1 }));
});
