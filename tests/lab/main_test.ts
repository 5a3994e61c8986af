import assert from "node:assert/strict";
import {
  formatProgress,
  formatSummary,
  infraLines,
  parseLabFlags,
  type PlainProgress,
  printPlain,
} from "../../lab/main.ts";
import type { LabProgress } from "../../lab/lab.ts";
import { parseSendFlags, sendBodies } from "../../lab/send_command.ts";
import { sumMetric, WorkerMetricsTracker } from "../../lab/worker_metrics.ts";
import { percentile } from "../../lab/lab.ts";

Deno.test("lab main: lab flags: defaults, values, --chaos mix", () => {
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

Deno.test("lab main: lab flags: bad values name the flag and what is allowed", () => {
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

Deno.test("lab main: percentile: nearest rank", () => {
  assert.equal(percentile([], 0.5), 0);
  assert.equal(percentile([1, 2, 3, 4], 0.5), 2);
  assert.equal(percentile([1, 2, 3, 4], 0.99), 4);
  assert.equal(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 0.99), 99);
});

Deno.test("lab main: formatSummary: shows the result and every problem", () => {
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
    downstreamErrors: 17,
    retries: 23,
    breakerOpens: 2,
  });
  assert.match(text, /result\s+FAILED/);
  assert.match(text, /downstream errors\s+17/);
  assert.match(text, /retries\s+23/);
  assert.match(text, /breaker opens\s+2/);
  assert.match(text, /✗ 1 valid messages were never accepted/);
});

const progress = (over: Partial<LabProgress> = {}): LabProgress => ({
  phase: "running",
  elapsedSeconds: 12.3,
  sent: 20000,
  received: 19000,
  accepted: 18000,
  valid: 19600,
  rejected: 0,
  deadLettered: 350,
  poison: 400,
  inFlight: 500,
  msgPerSecond: 2855.4,
  kills: 0,
  errors: 1234,
  retries: 5678,
  breakerOpens: 3,
  tableFaults: 0,
  ...over,
});

Deno.test("lab main: formatProgress: rate first, errors, retries and breaker opens, within 80 columns", () => {
  const line = formatProgress(progress(), "brownout");
  assert.equal(line, "2855/s acc 18000/19600 dlq 350/400 err 1234 retry 5678 open 3 12s");
  const huge = formatProgress(
    progress({
      msgPerSecond: 99999,
      accepted: 9_999_999,
      valid: 10_000_000,
      deadLettered: 200_000,
      poison: 200_000,
      errors: 999_999,
      retries: 9_999_999,
      breakerOpens: 99,
      kills: 12,
      phase: "stopping",
      elapsedSeconds: 9999,
    }),
    "flaky",
  );
  assert.ok(huge.length <= 80, `${huge.length}: ${huge}`);
  assert.match(huge, /^99999\/s acc 9999999\/10000000 .*err 999999 retry 9999999 open 99/);
  assert.ok(formatProgress(progress(), "x", 40).length <= 40);
});

Deno.test("lab main: formatProgress: with --infra-only the counts have no preloaded denominators", () => {
  const line = formatProgress(progress({ phase: "infra", accepted: 24606, valid: 4900 }), "x");
  assert.equal(line, "2855/s acc 24606 dlq 350 err 1234 retry 5678 open 3 infra 12s");
});

Deno.test("lab main: printPlain: piped, a line at each phase change and every 5 s between", () => {
  const last: PlainProgress = { at: Number.NEGATIVE_INFINITY, phase: undefined };
  const rows: Array<[LabProgress["phase"], number, boolean]> = [
    ["preloading", 0, true],
    ["running", 800, true], // a short run still shows that it ran
    ["running", 1300, false],
    ["running", 5800, true],
    ["stopping", 6000, true],
    ["stopping", 9000, false],
    ["stopping", 11_000, true],
  ];
  for (const [phase, now, printed] of rows) {
    assert.equal(printPlain(last, phase, now), printed, `${phase} at ${now}`);
  }
});

Deno.test("lab main: WorkerMetricsTracker: retries add up across restarts, breaker opens are transitions", () => {
  const t = new WorkerMetricsTracker();
  const scrape = (retries: number, enrich: number) =>
    `# TYPE sluice_retries_total counter\nsluice_retries_total{target="enrich"} ${retries}\n` +
    `sluice_retries_total{target="validator"} 1\nsluice_breaker_state{target="enrich"} ${enrich}\n` +
    `sluice_breaker_state{target="validator"} 0\n`;
  t.observe(scrape(4, 0));
  t.observe(scrape(9, 2));
  t.observe(scrape(12, 2));
  t.observe(scrape(12, 1));
  t.observe(scrape(2, 2)); // a restarted worker, its breaker open again
  assert.deepEqual(t.counts(), { retries: 13 + 3, breakerOpens: 2 });
  assert.deepEqual([...sumMetric(scrape(1, 0), "sluice_breaker_state", "target")], [
    ["enrich", 0],
    ["validator", 0],
  ]);
});

Deno.test("lab main: infraLines: exports with AWS_DEFAULT_REGION, then the worker's curl lines", () => {
  const lines = infraLines({
    SQS_QUEUE_URL: "http://127.0.0.1:1/000000000000/sluice-lab",
    AWS_DEFAULT_REGION: "us-east-1",
    HTTP_PORT: "9400",
  });
  assert.ok(lines.includes("export AWS_DEFAULT_REGION=us-east-1"));
  assert.ok(lines.some((l) => l.includes("curl -s localhost:9400/healthz")));
  assert.ok(lines.some((l) => l.includes("localhost:9400/metrics")));
});

Deno.test("lab main: infraLines: the queue URL on the SQS endpoint's host, and the README's npx start", () => {
  const lines = infraLines({
    SQS_QUEUE_URL: "http://sqs.us-east-1.localhost:4566/000000000000/sluice-lab",
    AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:4570",
  });
  assert.ok(lines.includes("export SQS_QUEUE_URL=http://127.0.0.1:4570/000000000000/sluice-lab"));
  assert.ok(lines.includes("export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:4570"));
  assert.ok(lines.some((l) => l.startsWith("# then: npx -y deno@2.9.6 task start")));
});

Deno.test("lab main: lab send: flags and bodies (valid for known users, then chosen poison)", () => {
  assert.deepEqual(parseSendFlags(["--count", "3", "--poison", "2"]), {
    help: false,
    count: 3,
    poison: 2,
    seed: undefined,
    users: undefined,
  });
  assert.throws(() => parseSendFlags(["--count", "x"]), /--count: got "x"/);
  const bodies = sendBodies({ count: 3, poison: 3 }, ["u1", "u2"], "t", 1700000000);
  assert.equal(bodies.length, 6);
  const valid = bodies.slice(0, 3).map((b) => JSON.parse(b));
  assert.deepEqual(valid.map((m) => m.user_id), ["u1", "u2", "u1"]);
  assert.equal(new Set(valid.map((m) => m.message_id)).size, 3);
  assert.throws(() => JSON.parse(bodies[3]!));
  assert.equal(JSON.parse(bodies[4]!).user_id, undefined);
  assert.equal(JSON.parse(bodies[5]!).event_ts, "yesterday");
});

Deno.test("lab main: lab --help explains each term of the live line and the summary in one line", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lab/main.ts", "--help"],
    cwd: new URL("../..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  for (
    const term of ["err E", "retry R", "open B", "downstream errors", "retries", "breaker opens"]
  ) {
    assert.match(text, new RegExp(`^  ${term} +\\S`, "m"), term);
  }
  assert.match(text, /deno task lab send/);
});
