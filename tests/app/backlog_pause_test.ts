import assert from "node:assert/strict";
import { BACKLOG_PAUSE_MS, backlogPause } from "../../src/app/backlog_pause.ts";

const PAUSE = {
  reason: "submissions queued for the validator reach half its limit",
  ms: BACKLOG_PAUSE_MS,
};

const rows: Array<[string, { pending: number; limit: number }, ReturnType<typeof backlogPause>]> = [
  ["nothing queued: receive", { pending: 0, limit: 64 }, undefined],
  ["less than half a round queued: receive", { pending: 31, limit: 64 }, undefined],
  ["half a round queued: wait", { pending: 32, limit: 64 }, PAUSE],
  ["more than a round: wait", { pending: 330, limit: 64 }, PAUSE],
  [
    "the limit shrank under an overload: a smaller round is enough",
    { pending: 8, limit: 8 },
    PAUSE,
  ],
];

for (const [name, backlog, expected] of rows) {
  Deno.test(`backlog pause: ${name}`, () => assert.deepEqual(backlogPause(backlog), expected));
}
