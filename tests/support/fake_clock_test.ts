import assert from "node:assert/strict";
import { FakeClock } from "./fake_clock.ts";

Deno.test("fake clock: an auto sleep moves time at once and is recorded", async () => {
  const clock = new FakeClock({ start: 10 });
  await clock.sleep(250);
  assert.equal(clock.now(), 260);
  assert.deepEqual(clock.sleeps, [250]);
  assert.equal(clock.advance(40), 300);
});

Deno.test("fake clock: a manual sleep waits for advance past its deadline, or its abort", async () => {
  const clock = new FakeClock({ start: 0, auto: false });
  let woke = false;
  const slept = clock.sleep(100).then(() => (woke = true));
  clock.advance(99);
  await Promise.resolve();
  assert.equal(woke, false);
  clock.advance(1);
  await slept;
  assert.equal(woke, true);
  const abort = new AbortController();
  const aborted = clock.sleep(50, abort.signal);
  abort.abort(new Error("stop"));
  await assert.rejects(aborted, /stop/);
  await assert.rejects(clock.sleep(1, abort.signal), /stop/);
});
