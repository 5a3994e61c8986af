import assert from "node:assert/strict";
import type { OutgoingMessage } from "../../lab/generator.ts";
import { isSettled, judgeSlice, type SliceResult } from "../../vm/lab_services.ts";

const valid = (id: string): OutgoingMessage => ({
  body: `{"id":"${id}"}`,
  messageId: id,
  duplicate: false,
});
const poison = (body: string): OutgoingMessage => ({
  body,
  poisonKind: "invalid_json",
  duplicate: false,
});
const EMPTY = { visible: 0, inFlight: 0, delayed: 0 };

Deno.test("vm lab services: judgeSlice: counts acceptances, duplicates, poison in the DLQ and what is left", () => {
  const slice = [valid("a"), valid("b"), valid("c"), poison("{"), poison("[")];
  const rows: Array<
    [string, Map<string, number>, Set<string>, typeof EMPTY, Partial<SliceResult>]
  > = [
    ["nothing yet", new Map(), new Set(), { visible: 5, inFlight: 0, delayed: 0 }, {
      accepted: 0,
      duplicates: 0,
      poisonInDlq: 0,
      leftInQueue: 5,
    }],
    ["all settled once", new Map([["a", 1], ["b", 1], ["c", 1]]), new Set(["{", "["]), EMPTY, {
      accepted: 3,
      duplicates: 0,
      poisonInDlq: 2,
      leftInQueue: 0,
    }],
    ["one accepted three times", new Map([["a", 3], ["b", 1]]), new Set(["{"]), {
      visible: 1,
      inFlight: 2,
      delayed: 3,
    }, { accepted: 2, duplicates: 2, poisonInDlq: 1, leftInQueue: 6 }],
    [
      "ids and bodies of other slices do not count",
      new Map([["z", 4]]),
      new Set(["other"]),
      EMPTY,
      {
        accepted: 0,
        duplicates: 0,
        poisonInDlq: 0,
      },
    ],
  ];
  for (const [name, acceptCount, dlqBodies, depth, want] of rows) {
    const r = judgeSlice(slice, { acceptCount, dlqBodies, depth, seconds: 7 });
    assert.deepEqual(r, { valid: 3, poison: 2, leftInQueue: 0, seconds: 7, ...want }, name);
  }
});

Deno.test("vm lab services: isSettled: every valid accepted, all poison in the DLQ, an empty queue", () => {
  const done: SliceResult = {
    valid: 3,
    accepted: 3,
    duplicates: 1,
    poison: 2,
    poisonInDlq: 2,
    leftInQueue: 0,
    seconds: 1,
  };
  const rows: Array<[string, Partial<SliceResult>, boolean]> = [
    ["settled (duplicates do not matter)", {}, true],
    ["one not accepted", { accepted: 2 }, false],
    ["one poison missing", { poisonInDlq: 1 }, false],
    ["one left in the queue", { leftInQueue: 1 }, false],
  ];
  for (const [name, change, want] of rows) {
    assert.equal(isSettled({ ...done, ...change }), want, name);
  }
});
