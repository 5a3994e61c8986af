import assert from "node:assert/strict";
import { SharedTimeouts, timeoutsOf } from "../../src/lib/shared_timeouts.ts";
import { FakeClock } from "../support/fake_clock.ts";

function rig() {
  const clock = new FakeClock({ start: 0, auto: false });
  return { clock, timeouts: new SharedTimeouts(clock) };
}

Deno.test("shared timeouts: fires after the time, never before, once", () => {
  const { clock, timeouts } = rig();
  let count = 0;
  timeouts.onTimeout(40, () => count++);
  clock.advance(39);
  assert.equal(count, 0, "never early");
  clock.advance(2); // the step of a 40 ms timeout is 2 ms: at most that late
  assert.equal(count, 1);
  clock.advance(1000);
  assert.equal(count, 1, "once");
});

Deno.test("shared timeouts: a cancelled one never fires; its step's timer is cancelled", () => {
  const { clock, timeouts } = rig();
  let fired = 0;
  const cancels = Array.from({ length: 50 }, () => timeouts.onTimeout(5000, () => fired++));
  assert.equal(clock.pending, 1, "fifty requests, one timer");
  cancels.forEach((cancel) => cancel());
  cancels[0]!();
  assert.equal(clock.pending, 0, "the last cancel cancels the timer");
  clock.advance(10_000);
  assert.equal(fired, 0);
});

Deno.test("shared timeouts: requests in the same step share it; cancelling one keeps the others", () => {
  const { clock, timeouts } = rig();
  const fired: string[] = [];
  const cancelA = timeouts.onTimeout(30, () => fired.push("a"));
  timeouts.onTimeout(30, () => fired.push("b"));
  timeouts.onTimeout(30, () => fired.push("c"));
  cancelA();
  clock.advance(100);
  assert.deepEqual(fired.sort(), ["b", "c"]);
});

Deno.test("shared timeouts: timeoutsOf gives one set per clock", () => {
  const a = new FakeClock();
  assert.equal(timeoutsOf(a), timeoutsOf(a));
  assert.notEqual(timeoutsOf(a), timeoutsOf(new FakeClock()));
});
