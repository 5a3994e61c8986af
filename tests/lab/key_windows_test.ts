import assert from "node:assert/strict";
import { splitLatencies, worstWindows } from "../../lab/key_windows.ts";

const at = (key: string, ...times: number[]) => times.map((t) => ({ key, at: t }));

Deno.test("key windows: the worst window is sliding, not a fixed bucket", () => {
  // 2 per fixed second, but 4 within [900, 1900).
  const figures = worstWindows([...at("a", 100, 900, 950, 1000, 1100, 2500)], 1000);
  assert.equal(figures.worst, 4);
  assert.deepEqual(figures.worstKeys, [{ key: "a", submissions: 4 }]);
});

Deno.test("key windows: a window is half-open: one exactly a window later is outside it", () => {
  assert.equal(worstWindows(at("a", 0, 1000, 2000), 1000).worst, 1);
  assert.equal(worstWindows(at("a", 0, 999), 1000).worst, 2);
});

Deno.test("key windows: per key, busiest first, three at most", () => {
  const figures = worstWindows([
    ...at("a", 0, 1),
    ...at("b", 5, 6, 7),
    ...at("c", 0),
    ...at("d", 0, 1, 2, 3),
  ], 1000);
  assert.deepEqual(figures.worstKeys.map((k) => k.key), ["d", "b", "a"]);
  assert.equal(worstWindows([], 1000).worst, 0);
});

Deno.test("key windows: latencies split into the hot users' and the quiet ones', sorted", () => {
  const split = splitLatencies(
    [{ key: "h", ms: 9 }, { key: "q", ms: 3 }, { key: "q", ms: 1 }, { key: "h", ms: 2 }],
    new Set(["h"]),
  );
  assert.deepEqual(split, { quiet: [1, 3], hot: [2, 9] });
});
