import assert from "node:assert/strict";
import { FakeClock } from "../support/fake_clock.ts";
import { createBreakers, pausedFor } from "../../src/app/breakers.ts";
import type { BreakerState } from "../../src/lib/circuit_breaker.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";

const b = (name: string, state: BreakerState, ms = 0) => ({
  name,
  state,
  remainingCooldownMs: () => ms,
});

// [name, breakers (validator, sqs), pause]
const rows: Array<[string, ReturnType<typeof b>[], ReturnType<typeof pausedFor>]> = [
  ["both closed: no pause", [b("validator", "closed"), b("sqs", "closed")], undefined],
  [
    "half-open lets probes through: no pause",
    [b("validator", "half_open"), b("sqs", "closed")],
    undefined,
  ],
  ["the validator's open breaker pauses intake for its cooldown", [
    b("validator", "open", 4000),
    b("sqs", "closed"),
  ], {
    reason: "validator circuit breaker is open",
    ms: 4000,
  }],
  ["both open: the first named wins", [b("validator", "open", 4000), b("sqs", "open", 9000)], {
    reason: "validator circuit breaker is open",
    ms: 4000,
  }],
  ["SQS open", [b("validator", "closed"), b("sqs", "open", 250)], {
    reason: "sqs circuit breaker is open",
    ms: 250,
  }],
];
for (const [name, breakers, pause] of rows) {
  Deno.test(`breakers: ${name}`, () => assert.deepEqual(pausedFor(breakers), pause));
}

Deno.test("breakers: every state change is in the gauge, the state log and handed on", () => {
  const metrics = createSluiceMetrics();
  const clock = new FakeClock();
  const logged: string[] = [];
  let changes = 0;
  const breakers = createBreakers({
    ports: { onChange: () => changes++ },
    services: {
      clock,
      metrics,
      states: { breaker: (target, to, from) => logged.push(`${target} ${from}->${to}`) },
    },
  });
  assert.equal(metrics.breakerState.get({ target: "sqs" }), 0);
  for (let i = 0; i < 5; i++) breakers.sqs.record(false, "ReceiveMessage: network");
  assert.equal(breakers.sqs.state, "open");
  assert.equal(metrics.breakerState.get({ target: "sqs" }), 2);
  assert.equal(metrics.breakerState.get({ target: "validator" }), 0);
  assert.deepEqual(logged, ["sqs closed->open"]);
  assert.equal(changes, 1);
  clock.advance(3_600_000);
  assert.equal(breakers.sqs.state, "half_open");
});
