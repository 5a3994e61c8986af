import assert from "node:assert/strict";
import { FakeClock } from "../support/fake_clock.ts";
import {
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
  FRESH_TALLY,
  openUntil,
  probeStep,
  VERDICT_WAIT_MS,
} from "../../src/lib/circuit_breaker.ts";
import { CircuitOpenError, HttpError, isRetriable, LocalError } from "../../src/lib/errors.ts";

function setup(options: Partial<CircuitBreakerOptions> = {}) {
  const clock = new FakeClock();
  const changes: Array<[BreakerState, BreakerState]> = [];
  const breaker = new CircuitBreaker({
    name: "enrichment",
    minimumCalls: 4,
    failureRateThreshold: 0.5,
    windowMs: 1000,
    cooldownMs: 5000,
    halfOpenProbes: 2,
    clock,
    onStateChange: (to, from) => changes.push([to, from]),
    ...options,
  });
  return { breaker, changes, advance: clock.advance };
}

const ok = () => Promise.resolve("ok");
/** Lets the promise jobs queued so far run (no time passes). */
async function tick() {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
const fail = () => Promise.reject(new Error("down"));

/** Opens the breaker by recording failures. */
function trip(breaker: CircuitBreaker) {
  for (let i = 0; i < 4; i++) breaker.record(false);
  assert.equal(breaker.state, "open");
}

Deno.test("circuit breaker: breaker stays closed below minimumCalls even at 100% failures", async () => {
  const { breaker, changes } = setup();
  for (let i = 0; i < 3; i++) await assert.rejects(breaker.run(fail), /down/);
  assert.equal(breaker.state, "closed");
  assert.deepEqual(changes, []);
});

Deno.test("circuit breaker: breaker opens when the failure rate reaches the threshold", async () => {
  const { breaker, changes } = setup();
  await breaker.run(ok);
  await breaker.run(ok);
  await assert.rejects(breaker.run(fail));
  assert.equal(breaker.state, "closed", "3 calls are below minimumCalls");
  await assert.rejects(breaker.run(fail));
  assert.equal(breaker.state, "open", "2 failures of 4 calls = 0.5");
  assert.deepEqual(changes, [["open", "closed"]]);
});

Deno.test("circuit breaker: breaker stays closed while the failure rate is below the threshold", async () => {
  const { breaker } = setup();
  for (let i = 0; i < 3; i++) await breaker.run(ok);
  await assert.rejects(breaker.run(fail));
  for (let i = 0; i < 10; i++) {
    await breaker.run(ok);
    await assert.rejects(breaker.run(fail));
    await breaker.run(ok);
  }
  assert.equal(breaker.state, "closed");
});

Deno.test("circuit breaker: failures roll out of the window", () => {
  const { breaker, advance } = setup();
  breaker.record(false);
  breaker.record(false);
  breaker.record(false);
  advance(1000); // a full window later
  breaker.record(false);
  assert.equal(breaker.state, "closed", "only 1 call is left in the window");
  breaker.record(false);
  breaker.record(false);
  advance(500); // half a window: the last 3 still count
  breaker.record(false);
  assert.equal(breaker.state, "open");
});

Deno.test("circuit breaker: an open breaker refuses calls with CircuitOpenError.remainingMs", async () => {
  const { breaker, advance } = setup();
  trip(breaker);
  advance(1500);
  let called = false;
  await assert.rejects(
    breaker.run(() => {
      called = true;
      return ok();
    }),
    (err) => {
      assert.ok(err instanceof CircuitOpenError);
      assert.equal(err.target, "enrichment");
      assert.equal(err.remainingMs, 3500);
      return true;
    },
  );
  assert.equal(called, false);
  assert.equal(breaker.canPass(), false);
  assert.equal(breaker.remainingCooldownMs(), 3500);
});

Deno.test("circuit breaker: open -> half_open after the cooldown", () => {
  const { breaker, changes, advance } = setup();
  trip(breaker);
  advance(4999);
  assert.equal(breaker.state, "open");
  advance(1);
  assert.equal(breaker.state, "half_open");
  assert.equal(breaker.remainingCooldownMs(), 0);
  assert.equal(breaker.canPass(), true);
  assert.deepEqual(changes, [["open", "closed"], ["half_open", "open"]]);
});

Deno.test("circuit breaker: half_open admits one probe, then as many at once as successes earn; closed after halfOpenProbes", async () => {
  const { breaker, changes, advance } = setup({ halfOpenProbes: 3 });
  trip(breaker);
  advance(5000);
  const d1 = Promise.withResolvers<string>();
  const p1 = breaker.run(() => d1.promise);
  assert.equal(breaker.canPass(), false, "one probe at first");
  await assert.rejects(breaker.run(ok), CircuitOpenError);
  d1.resolve("a");
  assert.equal(await p1, "a");
  assert.equal(breaker.state, "half_open", "one success is not enough");
  const d2 = Promise.withResolvers<string>();
  const d3 = Promise.withResolvers<string>();
  const p2 = breaker.run(() => d2.promise);
  const p3 = breaker.run(() => d3.promise);
  assert.equal(breaker.canPass(), false, "two at once after one success");
  d2.resolve("b");
  d3.resolve("c");
  assert.deepEqual(await Promise.all([p2, p3]), ["b", "c"]);
  assert.equal(breaker.state, "closed");
  assert.deepEqual(changes.at(-1), ["closed", "half_open"]);
  // The window starts empty after closing.
  breaker.record(false);
  breaker.record(false);
  assert.equal(breaker.state, "closed");
});

Deno.test("circuit breaker: each first probe that fails opens it again for 1.5× longer, up to 2× the floor, until a close resets it", async () => {
  const { breaker, changes, advance } = setup();
  trip(breaker);
  advance(6000);
  await assert.rejects(breaker.run(fail), /down/);
  assert.equal(breaker.state, "open");
  assert.equal(breaker.remainingCooldownMs(), 7500);
  assert.deepEqual(changes, [["open", "closed"], ["half_open", "open"], ["open", "half_open"]]);
  advance(7500);
  await assert.rejects(breaker.run(fail), /down/);
  assert.equal(breaker.remainingCooldownMs(), 10_000, "then 2×: 1.5² would be 2.25×");
  advance(10_000);
  await assert.rejects(breaker.run(fail), /down/);
  assert.equal(breaker.remainingCooldownMs(), 10_000, "2× at most: recovery stays prompt");
  advance(10_000);
  await breaker.run(ok);
  await breaker.run(ok);
  assert.equal(breaker.state, "closed");
  trip(breaker);
  assert.equal(breaker.remainingCooldownMs(), 5000, "the floor again after a close");
});

Deno.test("circuit breaker: probeStep row by row: the trickle grows with successes, shrinks with failures", () => {
  const o = { probes: 3, threshold: 0.5 };
  // [results so far ("s"/"f"), then: allowance, state]
  const rows: Array<[string, number, BreakerState]> = [
    ["s", 2, "half_open"],
    ["ss", 4, "half_open"],
    ["sss", 8, "closed"],
    ["f", 1, "open"], // nothing good yet: an outage costs one call per cooldown
    ["sf", 1, "half_open"], // a partial brownout: keep trickling
    ["sfs", 2, "half_open"],
    ["sfsf", 1, "half_open"],
    ["sfsfs", 2, "closed"], // 3 successes, 2 of 5 failed
    ["sffsfs", 2, "half_open"], // 3 successes, but 3 of 6 failed: not yet
    ["sffsfss", 4, "closed"], // 3 of 7 failed
    ["sfff", 1, "open"], // three failures in a row
    ["sffsffs", 2, "half_open"], // 4 of 7 failed: a brownout still on
  ];
  for (const [results, allowance, state] of rows) {
    let tally = FRESH_TALLY;
    let to: BreakerState = "half_open";
    for (const r of results) ({ tally, to } = probeStep(tally, r === "s", o));
    assert.deepEqual([tally.allowance, to], [allowance, state], results);
  }
  let tally = FRESH_TALLY;
  for (let i = 0; i < 10; i++) tally = probeStep(tally, true, { probes: 99, threshold: 0.5 }).tally;
  assert.equal(tally.allowance, 32, "capped");
});

Deno.test("circuit breaker: isFailure decides which errors count; the error is still rethrown", async () => {
  const { breaker } = setup();
  const notFound = Object.assign(new Error("404"), { status: 404 });
  const isFailure = (err: unknown) => (err as { status?: number }).status !== 404;
  for (let i = 0; i < 10; i++) {
    await assert.rejects(breaker.run(() => Promise.reject(notFound), isFailure), /404/);
  }
  assert.equal(breaker.state, "closed");
  for (let i = 0; i < 10; i++) await assert.rejects(breaker.run(fail, isFailure));
  assert.equal(breaker.state, "open", "10 failures of 20 calls");
});

Deno.test("circuit breaker: results of calls admitted before a state change are ignored", async () => {
  // One probe: a late success counted as a probe would close the breaker at once.
  const { breaker, advance } = setup({ halfOpenProbes: 1 });
  const slow = Promise.withResolvers<string>();
  const early = breaker.run(() => slow.promise);
  trip(breaker);
  advance(5000);
  assert.equal(breaker.state, "half_open");
  slow.resolve("late");
  assert.equal(await early, "late");
  assert.equal(breaker.state, "half_open", "a pre-open success is not a probe success");
  await breaker.run(ok);
  assert.equal(breaker.state, "closed");
});

Deno.test("circuit breaker: record() drives the same transitions for manual callers", () => {
  const { breaker, advance } = setup();
  trip(breaker);
  breaker.record(true); // ignored while open
  assert.equal(breaker.state, "open");
  advance(5000);
  breaker.record(true);
  assert.equal(breaker.state, "half_open");
  breaker.record(true);
  assert.equal(breaker.state, "closed");
});

Deno.test("circuit breaker: breaker validates its options", () => {
  assert.throws(
    () => new CircuitBreaker({ clock: new FakeClock(), name: "x", failureRateThreshold: 0 }),
    RangeError,
  );
  assert.throws(
    () => new CircuitBreaker({ clock: new FakeClock(), name: "x", failureRateThreshold: 1.5 }),
    RangeError,
  );
  assert.throws(
    () => new CircuitBreaker({ clock: new FakeClock(), name: "x", halfOpenProbes: 0 }),
    RangeError,
  );
  assert.throws(
    () => new CircuitBreaker({ clock: new FakeClock(), name: "x", windowMs: 0 }),
    RangeError,
  );
  assert.throws(
    () => new CircuitBreaker({ clock: new FakeClock(), name: "x", cooldownMs: -1 }),
    RangeError,
  );
  assert.throws(
    () =>
      new CircuitBreaker({
        clock: new FakeClock(),
        name: "x",
        cooldownMs: 5000,
        maxOpenMs: 1000,
      }),
    RangeError,
  );
  const defaults = new CircuitBreaker({ clock: new FakeClock(), name: "x" });
  assert.equal(defaults.name, "x");
  assert.equal(defaults.state, "closed");
  // Every other call fails: never 5 in a row, so only the window's ratio can open it.
  for (let i = 0; i < 19; i++) defaults.record(i % 2 === 1);
  assert.equal(defaults.state, "closed", "default minimumCalls is 20");
  defaults.record(false);
  assert.equal(defaults.state, "open");
  const streak = new CircuitBreaker({ clock: new FakeClock({ start: 0 }), name: "y" });
  for (let i = 0; i < 50; i++) streak.record(true);
  for (let i = 0; i < 4; i++) streak.record(false);
  assert.equal(streak.state, "closed", "4 failures after 50 successes");
  streak.record(false);
  assert.equal(streak.state, "open", "the default 5 failures in a row open it");
});

Deno.test("circuit breaker: hostile ids: a local error never counts in a breaker, not even as a success", async () => {
  const { breaker, advance } = setup();
  const local = () => Promise.reject(new URIError("URI malformed"));
  for (let i = 0; i < 10; i++) await assert.rejects(breaker.run(local, isRetriable), URIError);
  await assert.rejects(breaker.run(() => Promise.reject(new LocalError("bug")), isRetriable));
  assert.equal(breaker.state, "closed");
  // Ten local errors did not dilute the window: two real failures of four calls open it.
  await breaker.run(ok);
  await breaker.run(ok);
  await assert.rejects(breaker.run(fail));
  await assert.rejects(breaker.run(fail));
  assert.equal(breaker.state, "open");
  // A local error in a probe frees its slot without deciding anything.
  advance(5000);
  await assert.rejects(breaker.run(local));
  await assert.rejects(breaker.run(local));
  assert.equal(breaker.state, "half_open");
  assert.equal(breaker.canPass(), true);
});

Deno.test("circuit breaker: lastFailure: the error that counted last, and when; ignored errors do not count", async () => {
  const { breaker, advance } = setup();
  // Read through a function: an assertion on the getter would narrow its type for good.
  const last = () => breaker.lastFailure;
  assert.equal(last(), undefined);
  await breaker.run(fail).catch(() => {});
  const first = last();
  assert.equal((first?.error as Error).message, "down");
  advance(10);
  const notAFailure = new Error("HTTP 400");
  await breaker.run(() => Promise.reject(notAFailure), () => false).catch(() => {});
  assert.equal(last(), first, "an error that does not count is not the cause");
  breaker.record(false, "ReceiveMessage: network");
  assert.deepEqual(last(), { error: "ReceiveMessage: network", at: 1_000_010 });
  breaker.record(true);
  assert.equal(last()?.error, "ReceiveMessage: network", "kept after a success");
});

Deno.test("circuit breaker: openUntil: the later of the floor and Retry-After, capped", () => {
  // [floorMs, maxMs, askedUntil (absolute, now = 10_000), expected end]
  const rows: Array<[number, number, number | undefined, number]> = [
    [1000, 60_000, undefined, 11_000], // nobody asked: the floor
    [1000, 60_000, 12_000, 12_000], // Retry-After: 2 beats a 1 s floor
    [1000, 60_000, 10_500, 11_000], // Retry-After shorter than the floor: the floor
    [1000, 60_000, 5_000, 11_000], // a Retry-After already past: the floor
    [1000, 30_000, 1_000_000, 40_000], // a huge Retry-After is capped
    [5000, 60_000, 12_000, 15_000], // a longer floor still wins over a short Retry-After
  ];
  for (const [floor, max, asked, expected] of rows) {
    assert.equal(openUntil(10_000, floor, max, asked), expected, `${floor} ${max} ${asked}`);
  }
});

/** A failure as the enrichment client throws it for a 503 with Retry-After. */
const busy = (retryAfterMs?: number) => () =>
  Promise.reject(new HttpError("enrichment", 503, "brownout", { retryAfterMs }));

Deno.test("circuit breaker: Retry-After sets the open time: 2 s, not the 5 s floor of old", async () => {
  const { breaker, advance } = setup({ cooldownMs: 1000 });
  for (let i = 0; i < 4; i++) await assert.rejects(breaker.run(busy(2000)), HttpError);
  assert.equal(breaker.state, "open");
  assert.equal(breaker.remainingCooldownMs(), 2000);
  advance(1999);
  assert.equal(breaker.state, "open");
  advance(1);
  assert.equal(breaker.state, "half_open");
});

Deno.test("circuit breaker: without Retry-After an open breaker waits the floor (default 1 s)", () => {
  const clock = new FakeClock();
  const breaker = new CircuitBreaker({ name: "x", minimumCalls: 4, clock });
  const advance = clock.advance;
  trip(breaker);
  assert.equal(breaker.remainingCooldownMs(), 1000);
  advance(1000);
  assert.equal(breaker.state, "half_open");
});

Deno.test("circuit breaker: brownout recovery row by row: reopen on Retry-After, close on probe successes", async () => {
  const { breaker, changes, advance } = setup({ cooldownMs: 1000 });
  // [step, expected state after it]
  const steps: Array<[string, () => Promise<unknown> | void, BreakerState]> = [
    ["4 × 503 Retry-After 2", async () => {
      for (let i = 0; i < 4; i++) await breaker.run(busy(2000)).catch(() => {});
    }, "open"],
    ["+1.5 s", () => void advance(1500), "open"],
    ["+0.5 s", () => void advance(500), "half_open"],
    ["probe: 503 Retry-After 2", () => breaker.run(busy(2000)).catch(() => {}), "open"],
    ["+1 s (floor only)", () => void advance(1000), "open"],
    ["+1 s (Retry-After)", () => void advance(1000), "half_open"],
    ["probe ok", () => breaker.run(ok), "half_open"],
    ["probe ok", () => breaker.run(ok), "closed"],
    ["4 × 500, no Retry-After", async () => {
      for (let i = 0; i < 4; i++) await breaker.run(busy()).catch(() => {});
    }, "open"],
    ["+1 s: the old Retry-After is forgotten", () => void advance(1000), "half_open"],
  ];
  for (const [name, step, expected] of steps) {
    await step();
    assert.equal(breaker.state, expected, name);
  }
  assert.deepEqual(changes.map(([to]) => to), [
    "open",
    "half_open",
    "open",
    "half_open",
    "closed",
    "open",
    "half_open",
  ]);
});

Deno.test("circuit breaker: record() takes a Retry-After too; an open breaker never exceeds maxOpenMs", () => {
  const { breaker, advance } = setup({ cooldownMs: 1000, maxOpenMs: 10_000 });
  for (let i = 0; i < 4; i++) breaker.record(false, undefined, 3_600_000);
  assert.equal(breaker.state, "open");
  assert.equal(breaker.remainingCooldownMs(), 10_000);
  advance(10_000);
  assert.equal(breaker.state, "half_open");
});

Deno.test("circuit breaker: calls abandoned by a stop (AbortError) count neither way and never open it", async () => {
  const { breaker, changes } = setup();
  const aborted = () => Promise.reject(new DOMException("forced stop", "AbortError"));
  for (let i = 0; i < 6; i++) await assert.rejects(breaker.run(aborted), /forced stop/);
  assert.equal(breaker.state, "closed");
  assert.deepEqual(changes, []);
  assert.equal(breaker.lastFailure, undefined);
});

Deno.test("circuit breaker: after a failure, one call at a time until one succeeds; the rest wait for its verdict", async () => {
  const { breaker } = setup({ consecutiveFailures: 3, minimumCalls: 100 });
  const started: string[] = [];
  const answers = new Map<string, { resolve: (v: string) => void; reject: (e: Error) => void }>();
  const call = (name: string) =>
    breaker.run(() => {
      started.push(name);
      return new Promise<string>((resolve, reject) => answers.set(name, { resolve, reject }));
    });
  // Before any failure calls go out side by side.
  const a = call("a");
  const b = call("b");
  await tick();
  assert.deepEqual(started, ["a", "b"]);
  answers.get("a")!.reject(new Error("down"));
  await assert.rejects(a);
  // One failure in a row, b still out: c and d wait for b's verdict.
  const c = call("c");
  const d = call("d");
  await tick();
  assert.deepEqual(started, ["a", "b"]);
  answers.get("b")!.reject(new Error("down"));
  await assert.rejects(b);
  await tick();
  assert.deepEqual(started, ["a", "b", "c"], "one of them goes, the other still waits");
  // c succeeds: the streak is over and d goes at once.
  answers.get("c")!.resolve("ok");
  assert.equal(await c, "ok");
  await tick();
  assert.deepEqual(started, ["a", "b", "c", "d"]);
  answers.get("d")!.resolve("ok");
  assert.equal(await d, "ok");
  assert.equal(breaker.state, "closed");
});

Deno.test("circuit breaker: calls waiting when the breaker opens are refused, never sent", async () => {
  const { breaker } = setup({ consecutiveFailures: 2, minimumCalls: 100 });
  let sent = 0;
  await assert.rejects(breaker.run(() => (sent++, fail())));
  let failSecond!: () => void;
  const second = breaker.run(() => {
    sent++;
    return new Promise<string>((_, reject) => failSecond = () => reject(new Error("down")));
  });
  const waiting = [1, 2, 3].map(() => breaker.run(() => (sent++, ok())));
  await tick();
  assert.equal(sent, 2);
  failSecond();
  await assert.rejects(second);
  for (const w of waiting) await assert.rejects(w, CircuitOpenError);
  assert.equal(sent, 2, "the waiting calls met the open breaker, not the downstream");
  assert.equal(breaker.state, "open");
});

Deno.test("circuit breaker: a call waits for a verdict at most VERDICT_WAIT_MS, so a hung call holds nothing longer", async () => {
  const { breaker, advance } = setup({ consecutiveFailures: 5, minimumCalls: 100 });
  let sent = 0;
  // A call that hangs (its own timeout is seconds away), then a failure beside it.
  const hung = breaker.run(() => (sent++, new Promise<string>(() => {})));
  await assert.rejects(breaker.run(() => (sent++, fail())));
  const next = breaker.run(() => (sent++, ok()));
  await tick();
  assert.equal(sent, 2, "it waits for the hung call's verdict");
  advance(VERDICT_WAIT_MS - 1);
  await tick();
  assert.equal(sent, 2);
  advance(1);
  assert.equal(await next, "ok");
  assert.equal(sent, 3, "then it goes anyway");
  void hung;
});
