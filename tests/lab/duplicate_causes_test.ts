/** lab/duplicate_causes.ts: each acceptance beyond the first put down to one cause, row by row. */
import assert from "node:assert/strict";
import {
  type DuplicateCauses,
  duplicateCauses,
  type DuplicateInput,
  formatDuplicateCauses,
  type SlotAcceptance,
} from "../../lab/duplicate_causes.ts";

const at = (slot: number, messageId: string, sentAt: number): SlotAcceptance => ({
  slot,
  messageId,
  sentAt,
  acceptedAt: sentAt + 5,
});

const ROWS: Array<{ name: string; input: Partial<DuplicateInput>; want: DuplicateCauses }> = [
  {
    name: "no duplicates",
    input: { acceptCount: new Map([["a", 1]]) },
    want: { atKill: 0, producerCopies: 0, redeliveries: 0 },
  },
  {
    name: "without fronts: a producer copy accepted twice",
    input: { acceptCount: new Map([["a", 2]]), producerDuplicateIds: new Set(["a"]) },
    want: { atKill: 0, producerCopies: 1, redeliveries: 0 },
  },
  {
    name: "without fronts: a message sent once and accepted twice is a redelivery",
    input: { acceptCount: new Map([["a", 3]]) },
    want: { atKill: 0, producerCopies: 0, redeliveries: 2 },
  },
  {
    name: "the killed worker sent it before its kill, another worker after: at a SIGKILL",
    input: {
      acceptCount: new Map([["a", 2]]),
      acceptances: [at(0, "a", 100), at(1, "a", 40_000)],
      kills: [{ slot: 0, at: 500 }],
    },
    want: { atKill: 1, producerCopies: 0, redeliveries: 0 },
  },
  {
    name: "the slot's restarted worker sends it again: at a SIGKILL too",
    input: {
      acceptCount: new Map([["a", 2]]),
      acceptances: [at(0, "a", 100), at(0, "a", 40_000)],
      kills: [{ slot: 0, at: 500 }],
    },
    want: { atKill: 1, producerCopies: 0, redeliveries: 0 },
  },
  {
    name: "a kill of another slot does not explain it",
    input: {
      acceptCount: new Map([["a", 2]]),
      acceptances: [at(0, "a", 100), at(1, "a", 40_000)],
      kills: [{ slot: 2, at: 500 }],
    },
    want: { atKill: 0, producerCopies: 0, redeliveries: 1 },
  },
  {
    name: "both acceptances before the kill: not the kill's (a producer copy)",
    input: {
      acceptCount: new Map([["a", 2]]),
      acceptances: [at(0, "a", 100), at(1, "a", 200)],
      kills: [{ slot: 0, at: 500 }],
      producerDuplicateIds: new Set(["a"]),
    },
    want: { atKill: 0, producerCopies: 1, redeliveries: 0 },
  },
  {
    name: "a producer copy the killed worker had sent counts at the kill (the table's allowance)",
    input: {
      acceptCount: new Map([["a", 2]]),
      acceptances: [at(0, "a", 100), at(1, "a", 40_000)],
      kills: [{ slot: 0, at: 500 }],
      producerDuplicateIds: new Set(["a"]),
    },
    want: { atKill: 1, producerCopies: 0, redeliveries: 0 },
  },
  {
    name: "the validator's count wins: an acceptance the fronts did not see gets the id's cause",
    input: {
      acceptCount: new Map([["a", 3], ["b", 2]]),
      acceptances: [at(0, "a", 100), at(1, "a", 40_000), at(1, "b", 10)],
      kills: [{ slot: 0, at: 500 }],
      producerDuplicateIds: new Set(["b"]),
    },
    want: { atKill: 1, producerCopies: 1, redeliveries: 1 },
  },
];

for (const row of ROWS) {
  Deno.test(`lab duplicate causes: ${row.name}`, () => {
    const got = duplicateCauses({
      acceptCount: new Map(),
      acceptances: [],
      kills: [],
      producerDuplicateIds: new Set(),
      ...row.input,
    });
    assert.deepEqual(got, row.want);
  });
}

Deno.test("lab duplicate causes: the summary's words", () => {
  assert.equal(
    formatDuplicateCauses(5, { atKill: 2, producerCopies: 2, redeliveries: 1 }),
    "5: 2 at a SIGKILL (sent by the killed worker, sent again after it), " +
      "3 with no kill involved (2 producer copies accepted twice, 1 redeliveries of accepted messages)",
  );
});
