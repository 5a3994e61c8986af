import assert from "node:assert/strict";
import { createLogger } from "../../src/lib/logger.ts";
import {
  decideRepeat,
  limitRepeats,
  repeatKey,
  RepeatLimiter,
  type RepeatState,
} from "../../src/lib/repeat_limiter.ts";
import { FakeClock } from "../support/fake_clock.ts";

const MINUTE = 60_000;

Deno.test("repeat limiter: decideRepeat: row by row", () => {
  const rows: Array<{
    name: string;
    state: RepeatState | undefined;
    now: number;
    write: boolean;
    repeated: number;
    next: RepeatState;
  }> = [
    {
      name: "first occurrence is written",
      state: undefined,
      now: 1000,
      write: true,
      repeated: 0,
      next: { lastWrittenAt: 1000, held: 0 },
    },
    {
      name: "a repeat within the interval is held and counted",
      state: { lastWrittenAt: 1000, held: 0 },
      now: 1000 + MINUTE - 1,
      write: false,
      repeated: 0,
      next: { lastWrittenAt: 1000, held: 1 },
    },
    {
      name: "held ones accumulate",
      state: { lastWrittenAt: 1000, held: 41 },
      now: 30_000,
      write: false,
      repeated: 0,
      next: { lastWrittenAt: 1000, held: 42 },
    },
    {
      name: "the first repeat a full interval later is written with the count",
      state: { lastWrittenAt: 1000, held: 42 },
      now: 1000 + MINUTE,
      write: true,
      repeated: 42,
      next: { lastWrittenAt: 1000 + MINUTE, held: 0 },
    },
    {
      name: "after a quiet interval nothing was held",
      state: { lastWrittenAt: 1000, held: 0 },
      now: 1000 + 5 * MINUTE,
      write: true,
      repeated: 0,
      next: { lastWrittenAt: 1000 + 5 * MINUTE, held: 0 },
    },
  ];
  for (const row of rows) {
    const got = decideRepeat(row.state, row.now, MINUTE);
    assert.deepEqual(got, { write: row.write, repeated: row.repeated, next: row.next }, row.name);
  }
});

Deno.test("repeat limiter: repeatKey: volatile fields and error identity", () => {
  const a = repeatKey("warn", "receive failed", { error: new Error("boom"), failures: 1 });
  const b = repeatKey("warn", "receive failed", { error: new Error("boom"), failures: 7 });
  const c = repeatKey("warn", "receive failed", { error: new Error("other"), failures: 1 });
  const d = repeatKey("error", "receive failed", { error: new Error("boom"), failures: 1 });
  assert.equal(a, b, "attempt counters do not make a line different");
  assert.notEqual(a, c, "another error is another line");
  assert.notEqual(a, d, "another level is another line");
  assert.notEqual(
    repeatKey("warn", "message", { message_id: "m1" }),
    repeatKey("warn", "message", { message_id: "m2" }),
    "lines about different messages are never identical",
  );
});

Deno.test("repeat limiter: limitRepeats: the first warning, then one a minute with a count", () => {
  const clock = new FakeClock({ start: 0 });
  const lines: Array<Record<string, unknown>> = [];
  const base = createLogger({ clock, write: (l) => lines.push(JSON.parse(l)) });
  const log = limitRepeats(base, new RepeatLimiter({ clock }));
  for (let i = 0; i < 100; i++) {
    clock.set(i * 1000); // one a second for 100 s
    log.warn("receive failed; backing off", { error: new Error("ECONNREFUSED"), failures: i });
    log.info("progress", { i });
  }
  const warnings = lines.filter((l) => l.level === "warn");
  assert.deepEqual(warnings.map((l) => [l.ts, l.repeated]), [
    ["1970-01-01T00:00:00.000Z", undefined],
    ["1970-01-01T00:01:00.000Z", 59],
  ]);
  assert.equal(lines.filter((l) => l.level === "info").length, 100, "info is never limited");
  // Children share the limiter.
  log.child({ component: "x" }).warn("receive failed; backing off", {
    error: new Error("ECONNREFUSED"),
  });
  assert.equal(lines.filter((l) => l.level === "warn").length, 2);
});

Deno.test("repeat limiter: RepeatLimiter forgets the oldest key beyond maxKeys", () => {
  const limiter = new RepeatLimiter({ maxKeys: 2, clock: { monotonic: () => 0 } });
  assert.equal(limiter.admit("a").write, true);
  assert.equal(limiter.admit("b").write, true);
  assert.equal(limiter.admit("a").write, false);
  assert.equal(limiter.admit("c").write, true); // forgets "a"
  assert.equal(limiter.admit("a").write, true);
  assert.equal(limiter.admit("c").write, false);
});
