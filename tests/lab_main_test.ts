import assert from "node:assert/strict";
import { formatSummary, parseLabFlags } from "../lab/main.ts";
import { percentile } from "../lab/lab.ts";

Deno.test("lab flags: defaults, values, --chaos mix", () => {
  const d = parseLabFlags([]);
  assert.equal(d.scenario, "io_mild");
  assert.equal(d.messages, 5000);
  assert.equal(d.rate, 0);
  assert.equal(d.users, 2000);
  assert.equal(d.seed, 1);
  assert.equal(d.poisonShare, 0.02);
  assert.deepEqual(d.chaos, {});
  const f = parseLabFlags([
    "--scenario",
    "flaky",
    "--messages=300",
    "--json",
    "--crash-rate",
    "0.1",
  ]);
  assert.equal(f.scenario, "flaky");
  assert.equal(f.messages, 300);
  assert.equal(f.json, true);
  assert.deepEqual(f.chaos, { crashRate: 0.1 });
  const c = parseLabFlags(["--chaos", "--messages", "900", "--slow-every", "7"]);
  assert.equal(c.chaos?.crashAfterReceive, 300);
  assert.equal(c.chaos?.slowEvery, 7, "an explicit flag overrides the mix");
  assert.ok((c.chaos?.sqsOutageSeconds ?? 0) > 0);
});

Deno.test("lab flags: bad values name the flag and what is allowed", () => {
  assert.throws(
    () => parseLabFlags(["--scenario", "heavy"]),
    /--scenario: got "heavy", expected one of io_mild/,
  );
  assert.throws(
    () => parseLabFlags(["--messages", "1.5"]),
    /--messages: got "1.5", expected an integer/,
  );
  assert.throws(() => parseLabFlags(["--messages", "abc"]), /--messages/);
  assert.throws(
    () => parseLabFlags(["--crash-rate", "2"]),
    /--crash-rate: got "2", expected a number from 0 to 1/,
  );
  assert.throws(() => parseLabFlags(["--bogus"]), /bogus/);
});

Deno.test("percentile: nearest rank", () => {
  assert.equal(percentile([], 0.5), 0);
  assert.equal(percentile([1, 2, 3, 4], 0.5), 2);
  assert.equal(percentile([1, 2, 3, 4], 0.99), 4);
  assert.equal(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 0.99), 99);
});

Deno.test("formatSummary: shows the result and every problem", () => {
  const text = formatSummary({
    scenario: "io_mild",
    messages: 10,
    valid: 9,
    poison: 1,
    producerDuplicates: 0,
    accepted: 8,
    duplicateSubmissions: 0,
    wronglyRejected: 0,
    lost: 1,
    deadLettered: 1,
    poisonInDlq: 1,
    leftInQueue: 0,
    killedInFlight: 0,
    durationSeconds: 1,
    msgPerSecond: 9,
    p50Ms: 1,
    p99Ms: 2,
    sqsRequests: 5,
    sqsRequestsPerMessage: 0.5,
    enrichRequests: 3,
    enrichRequestsPerMessage: 0.3,
    enrichIdsPerMessage: 1,
    peakRssMb: 50,
    steadyMsgPerSecond: 0,
    workerCpuMs: 0,
    cpuMsPerMessage: 0,
    enrichBrownoutRequests: 0,
    ok: false,
    problems: ["1 valid messages were never accepted"],
    sqsRequestsByAction: {},
    rejectedByReason: {},
    kills: 0,
    dlqExtraCopies: 0,
    logFile: "x.log",
  });
  assert.match(text, /result\s+FAILED/);
  assert.match(text, /✗ 1 valid messages were never accepted/);
});
