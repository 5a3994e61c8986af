/** The heartbeat tracks received message objects, and extends only those still tracked. */
import assert from "node:assert/strict";
import { VisibilityHeartbeat } from "../../src/flow/visibility_heartbeat.ts";

Deno.test("heartbeat: extends the tracked messages near their visibility's end, not the untracked", () => {
  let now = 0;
  const extended: Array<[string, number]> = [];
  const heartbeat = new VisibilityHeartbeat({
    extend: (handle, seconds) => {
      extended.push([handle, seconds]);
      return Promise.resolve("done");
    },
    visibilityTimeoutSeconds: 30,
    now: () => now,
  });
  const a = { receiptHandle: "h-a" }, b = { receiptHandle: "h-b" };
  heartbeat.track(a, 0, 30);
  heartbeat.track(b, 0, 30);
  // A second receive of the same message is another object: untracking it leaves `a` alone.
  heartbeat.untrack({ receiptHandle: "h-a" });
  heartbeat.untrack(b);
  assert.equal(heartbeat.size, 1);
  now = 10_000;
  assert.equal(heartbeat.beat(), 0, "15 s of visibility left: too early");
  now = 16_000;
  assert.equal(heartbeat.beat(), 1);
  assert.deepEqual(extended, [["h-a", 30]]);
  heartbeat.untrack(a);
  now = 60_000;
  assert.equal(heartbeat.beat(), 0);
  assert.equal(heartbeat.size, 0);
});
