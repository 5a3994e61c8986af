/** The heartbeat tracks received message objects, and extends only those still tracked. */
import assert from "node:assert/strict";
import { FakeClock } from "../support/fake_clock.ts";
import { VisibilityHeartbeat } from "../../src/flow/visibility_heartbeat.ts";

Deno.test("heartbeat: extends the tracked messages near their visibility's end, not the untracked", () => {
  const clock = new FakeClock({ start: 0 });
  const extended: Array<[string, number]> = [];
  const heartbeat = new VisibilityHeartbeat({
    extend: (handle, seconds) => {
      extended.push([handle, seconds]);
      return Promise.resolve("done");
    },
    visibilityTimeoutSeconds: 30,
    clock,
  });
  const a = { receiptHandle: "h-a" }, b = { receiptHandle: "h-b" };
  heartbeat.track(a, 0, 30);
  heartbeat.track(b, 0, 30);
  // A second receive of the same message is another object: untracking it leaves `a` alone.
  heartbeat.untrack({ receiptHandle: "h-a" });
  heartbeat.untrack(b);
  assert.equal(heartbeat.size, 1);
  clock.set(10_000);
  assert.equal(heartbeat.beat(), 0, "15 s of visibility left: too early");
  clock.set(16_000);
  assert.equal(heartbeat.beat(), 1);
  assert.deepEqual(extended, [["h-a", 30]]);
  heartbeat.untrack(a);
  clock.set(60_000);
  assert.equal(heartbeat.beat(), 0);
  assert.equal(heartbeat.size, 0);
});

Deno.test("heartbeat: an extension that failed is tried again on the next beat", async () => {
  const clock = new FakeClock({ start: 0 });
  let fail = true;
  const extended: number[] = [];
  const heartbeat = new VisibilityHeartbeat({
    extend: () => {
      extended.push(clock.monotonic());
      return fail ? Promise.reject(new Error("SQS unreachable")) : Promise.resolve("done");
    },
    visibilityTimeoutSeconds: 30,
    clock,
  });
  heartbeat.track({ receiptHandle: "h" }, 0, 30);
  clock.set(16_000);
  assert.equal(heartbeat.beat(), 1);
  await new Promise((resolve) => setTimeout(resolve, 0));
  fail = false;
  clock.set(17_000);
  assert.equal(heartbeat.beat(), 1, "retried: its visibility was not pushed");
  await new Promise((resolve) => setTimeout(resolve, 0));
  clock.set(18_000);
  assert.equal(heartbeat.beat(), 0, "extended now");
  assert.deepEqual(extended, [16_000, 17_000]);
});

Deno.test("heartbeat: a stale receipt marks the message stale and tells onStale once", async () => {
  const stale: string[] = [];
  const heartbeat = new VisibilityHeartbeat({
    extend: () => Promise.resolve("stale"),
    visibilityTimeoutSeconds: 30,
    clock: { monotonic: () => 16_000, sleep: () => Promise.resolve() },
    onStale: (handle) => stale.push(handle),
  });
  const m = { receiptHandle: "h" };
  heartbeat.track(m, 0, 30);
  assert.equal(heartbeat.isStale(m), false);
  heartbeat.beat();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(heartbeat.isStale(m), true);
  assert.equal(heartbeat.size, 0, "no longer extended");
  assert.equal(heartbeat.beat(), 0);
  assert.deepEqual(stale, ["h"]);
});
