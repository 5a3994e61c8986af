import assert from "node:assert/strict";
import { StateLog } from "../../src/app/state_log.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { RepeatLimiter } from "../../src/lib/repeat_limiter.ts";
import { FakeClock } from "../support/fake_clock.ts";

function setup() {
  const clock = new FakeClock({ start: 0 });
  const lines: Array<Record<string, unknown>> = [];
  const states = new StateLog({
    logger: createLogger({ clock, write: (l) => lines.push(JSON.parse(l)) }),
    urls: { enrichment: "http://enrich.lab:8081" },
    repeats: new RepeatLimiter({ clock }),
  });
  return { states, lines, advance: clock.advance };
}

Deno.test("state log: a breaker change names the target's URL and the last failure", () => {
  const { states, lines } = setup();
  states.breaker("enrichment", "open", "closed", new Error("HTTP 503 from enrichment"));
  assert.deepEqual({ ...lines[0], ts: undefined }, {
    ts: undefined,
    level: "warn",
    msg: "circuit breaker changed state",
    target: "enrichment",
    from: "closed",
    to: "open",
    url: "http://enrich.lab:8081",
    last_error: "Error: HTTP 503 from enrichment",
  });
  states.breaker("sqs", "closed", "half_open", undefined);
  assert.equal(lines[1]!.level, "info");
  assert.equal(lines[1]!.url, null, "an unknown target has no URL");
  assert.equal(lines[1]!.last_error, null);
});

Deno.test("state log: an open/half-open cycle every 5 s is written once a minute with a count", () => {
  const { states, lines, advance } = setup();
  const cause = new Error("connect ECONNREFUSED");
  for (let i = 0; i < 30; i++) { // 150 s of a dead downstream
    states.breaker("enrichment", "open", i === 0 ? "closed" : "half_open", cause);
    advance(5000);
    states.breaker("enrichment", "half_open", "open", cause);
  }
  const opens = lines.filter((l) => l.to === "open");
  assert.deepEqual(opens.map((l) => [l.from, l.repeated]), [
    ["closed", undefined],
    ["half_open", undefined],
    ["half_open", 11],
    ["half_open", 11],
  ]);
  assert.ok(lines.length <= 8, `${lines.length} lines for 150 s`);
});

Deno.test("state log: readiness is written only when it changes, with the reasons", () => {
  const { states, lines } = setup();
  states.readiness(false, ["sqs circuit breaker is open (next probe in 5 s)"]);
  states.readiness(false, ["sqs circuit breaker is open (next probe in 4 s)"]);
  states.readiness(true, []);
  states.readiness(true, []);
  assert.deepEqual(lines.map((l) => [l.level, l.ready, l.reasons]), [
    ["warn", false, ["sqs circuit breaker is open (next probe in 5 s)"]],
    ["info", true, []],
  ]);
});
