import assert from "node:assert/strict";
import { Lifecycle, type RunningSignals } from "../../src/app/lifecycle.ts";
import { FakeClock } from "../support/fake_clock.ts";

/** Lets every pending promise callback run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * Starts, lets startup finish, then stops (`graceMs`); returns once the stop has begun, with the
 * stop's promise (wrapped, so it is not awaited here).
 */
async function startThenStop(
  lifecycle: Lifecycle,
  graceMs?: number,
): Promise<{ stopped: Promise<void> }> {
  lifecycle.start();
  await settle();
  const stopped = lifecycle.stop(graceMs);
  await settle();
  return { stopped };
}

/** How every stop past startup ends: the flush, then the background work, then the log line. */
const FLUSHED_AND_STOPPED = [
  "flush (background aborted: false)",
  "stopped() (background aborted: true)",
  "info stopped",
];

/**
 * A lifecycle over fakes that write what happens to `events`: the pipeline's run ends when
 * intake aborts; its drain ends when `drainDone` resolves or the work signal aborts (as the
 * real one releases unfinished messages then); the flush ends when `flushDone` resolves.
 */
function harness(options: { drainsAlone?: boolean; flushes?: boolean; startup?: Promise<void> }) {
  const clock = new FakeClock({ auto: false });
  const events: string[] = [];
  let signals: RunningSignals | undefined;
  let work: AbortSignal | undefined;
  const lifecycle = new Lifecycle({
    settings: { graceMs: 10_000, wireMs: 6_000, flushMs: 4_000 },
    ports: {
      prepare: async (signal) => {
        events.push("prepare");
        await options.startup;
        if (signal.aborted) events.push("prepare saw the stop");
      },
      begin: (s) => {
        events.push("begin");
        signals = s;
        return {
          pipeline: {
            inFlight: 3,
            alive: true,
            run: (intake, w) => {
              work = w;
              events.push("run");
              return new Promise<void>((resolve) =>
                intake.addEventListener("abort", () => {
                  events.push("intake aborted");
                  resolve();
                })
              );
            },
            drain: () => {
              events.push("drain");
              if (options.drainsAlone ?? true) return Promise.resolve();
              return new Promise<void>((resolve) =>
                work!.addEventListener("abort", () => {
                  events.push(`work aborted: ${(work!.reason as Error).message}`);
                  resolve();
                })
              );
            },
          },
          settler: {
            flush: () => {
              events.push(`flush (background aborted: ${signals!.background.aborted})`);
              return (options.flushes ?? true) ? Promise.resolve() : new Promise<void>(() => {});
            },
          },
        };
      },
      stopped: () => events.push(`stopped() (background aborted: ${signals?.background.aborted})`),
    },
    services: {
      logger: {
        info: (message) => events.push(`info ${message}`),
        warn: (message) => events.push(`warn ${message}`),
      },
      clock,
    },
  });
  return { lifecycle, events, clock, signals: () => signals };
}

Deno.test("lifecycle: a stop that drains within the grace: intake, drain, flush, background, stopped", async () => {
  const { lifecycle, events, signals } = harness({});
  assert.equal(lifecycle.starting, true);
  lifecycle.start();
  await settle();
  assert.equal(lifecycle.starting, false);
  assert.equal(lifecycle.running?.pipeline.inFlight, 3);
  await lifecycle.stop();
  await lifecycle.done;
  assert.deepEqual(events, [
    "prepare",
    "begin",
    "run",
    "info stopping: intake ended, draining in-flight work",
    "intake aborted",
    "drain",
    ...FLUSHED_AND_STOPPED,
  ]);
  assert.equal(signals()!.forced.aborted, false);
});

Deno.test("lifecycle: the grace runs out: a warning, the work signal aborts, then the flush", async () => {
  const { lifecycle, events, clock } = harness({ drainsAlone: false });
  const { stopped } = await startThenStop(lifecycle, 2_000);
  assert.ok(!events.includes("flush (background aborted: false)"), "no flush inside the grace");
  clock.advance(1_999);
  await settle();
  assert.ok(!events.some((e) => e.startsWith("warn")), "still inside the grace");
  clock.advance(1);
  await stopped;
  assert.deepEqual(events.slice(3), [
    "info stopping: intake ended, draining in-flight work",
    "intake aborted",
    "drain",
    "warn grace period over; releasing unfinished messages",
    "work aborted: shutdown grace period over",
    ...FLUSHED_AND_STOPPED,
  ]);
});

Deno.test("lifecycle: force during the grace: no grace warning, requests abandoned, still flushed", async () => {
  const { lifecycle, events, signals } = harness({ drainsAlone: false });
  const { stopped } = await startThenStop(lifecycle);
  const forced = lifecycle.force();
  assert.equal(signals()!.forced.aborted, true);
  await Promise.all([stopped, forced]);
  assert.deepEqual(events.slice(3), [
    "info stopping: intake ended, draining in-flight work",
    "intake aborted",
    "drain",
    "warn forced stop: abandoning requests in flight; releasing unfinished messages",
    "work aborted: forced stop",
    ...FLUSHED_AND_STOPPED,
  ]);
});

Deno.test("lifecycle: a stop during startup: nothing is built, nothing flushed", async () => {
  const startup = Promise.withResolvers<void>();
  const { lifecycle, events } = harness({ startup: startup.promise });
  lifecycle.start();
  await settle();
  assert.equal(lifecycle.starting, true);
  const stopped = lifecycle.stop();
  startup.resolve();
  await stopped;
  await lifecycle.done;
  assert.equal(lifecycle.running, undefined);
  assert.deepEqual(events, [
    "prepare",
    "info stopping: intake ended, draining in-flight work",
    "prepare saw the stop",
    "stopped() (background aborted: undefined)",
    "info stopped",
  ]);
});

Deno.test("lifecycle: a flush that hangs is given up after flushMs", async () => {
  const { lifecycle, events, clock } = harness({ flushes: false });
  const { stopped } = await startThenStop(lifecycle);
  assert.equal(events.at(-1), "flush (background aborted: false)");
  clock.advance(3_999);
  await settle();
  assert.equal(events.at(-1), "flush (background aborted: false)");
  clock.advance(1);
  await stopped;
  assert.equal(events.at(-1), "info stopped");
  assert.deepEqual(clock.sleeps, [10_000, 4_000], "the grace, then the flush's bound");
});
