import assert from "node:assert/strict";
import {
  FORCE_AFTER_MS,
  type StopSignalAction,
  stopSignalAction,
  type StopSignalState,
} from "../../src/app/stop_signal.ts";

// [name, state, now (ms), action]. The first signal arrived at t = 1000.
const rows: Array<[string, StopSignalState, number, StopSignalAction]> = [
  ["the first signal starts the drain", { firstAt: undefined, forced: false }, 1000, "stop"],
  [
    "a second signal 10 ms later is the same stop",
    { firstAt: 1000, forced: false },
    1010,
    "ignore",
  ],
  [
    "a second signal at the same instant is the same stop",
    {
      firstAt: 1000,
      forced: false,
    },
    1000,
    "ignore",
  ],
  [
    "just under 2 s later: still the same stop",
    {
      firstAt: 1000,
      forced: false,
    },
    1000 + FORCE_AFTER_MS - 1,
    "ignore",
  ],
  [
    "2 s into the drain: forces the stop",
    {
      firstAt: 1000,
      forced: false,
    },
    1000 + FORCE_AFTER_MS,
    "force",
  ],
  ["a minute into the drain: forces the stop", { firstAt: 1000, forced: false }, 61_000, "force"],
  ["after a forced stop: nothing more to do", { firstAt: 1000, forced: true }, 90_000, "ignore"],
];

for (const [name, state, now, expected] of rows) {
  Deno.test(`stop signal: stopSignalAction: ${name}`, () => {
    assert.equal(stopSignalAction(state, now), expected);
  });
}

Deno.test("stop signal: stopSignalAction: the window can be changed", () => {
  assert.equal(stopSignalAction({ firstAt: 0, forced: false }, 500, 400), "force");
  assert.equal(stopSignalAction({ firstAt: 0, forced: false }, 300, 400), "ignore");
});
