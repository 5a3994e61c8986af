/** The lab's table faults: flags, the windows' schedule, the missing-table mode, the SIGTERM phase's table. */
import assert from "node:assert/strict";
import { formatProgress, formatSummary, parseLabFlags } from "../../lab/main.ts";
import { dueWindow, onLastReceive, refusalLeftMs, refusalMayStart } from "../../lab/chaos.ts";
import {
  CHAOS_TABLE_FAULTS,
  type LabProgress,
  type TableFaultWindow,
} from "../../lab/lab_types.ts";
import { runLab } from "../../lab/lab.ts";
import { tableMissingProblems, type TableMissingSummary } from "../../lab/table_missing.ts";
import { phaseEnv, runSigtermPhase } from "../../lab/sigterm_phase.ts";
import { startCommand } from "../../lab/start_command.ts";
import { createLogSink } from "../../lab/worker_process.ts";
import { labSummary } from "../support/lab_summary.ts";

const REPO = new URL("../../", import.meta.url).pathname;

Deno.test("lab table faults: flags: one window a quarter in, each kind with its defaults", () => {
  const refuse = parseLabFlags(["--table", "--table-fault", "refuse"]);
  assert.deepEqual(refuse.chaos?.tableFaults, [
    { kind: "refuse", seconds: 20, atAccepted: 0.25, refusal: "mix" },
  ]);
  const throttle = parseLabFlags([
    "--table",
    "--table-fault",
    "throttle",
    "--table-fault-seconds",
    "20",
    "--table-fault-share",
    "0.6",
  ]);
  assert.deepEqual(throttle.chaos?.tableFaults, [
    { kind: "throttle", seconds: 20, atAccepted: 0.25, share: 0.6 },
  ]);
  const slow = parseLabFlags(["--table", "--table-fault", "slow", "--table-slow-ms", "3000"]);
  assert.deepEqual(slow.chaos?.tableFaults, [
    { kind: "slow", seconds: 20, atAccepted: 0.25, slowMs: 3000 },
  ]);
  const denied = parseLabFlags([
    "--table",
    "--table-fault",
    "refuse",
    "--table-refusal",
    "access-denied",
    "--table-fault-seconds",
    "40",
  ]);
  assert.equal(denied.chaos?.tableFaults?.[0]?.refusal, "access-denied");
  assert.equal(denied.chaos?.tableFaults?.[0]?.seconds, 40);
  assert.equal(parseLabFlags(["--table-missing"]).tableMissing, true);
});

Deno.test("lab table faults: flags: --chaos with --table adds the mix; --table-fault replaces it", () => {
  const mix = parseLabFlags(["--workers", "3", "--table", "--chaos"]);
  assert.deepEqual(mix.chaos?.tableFaults, CHAOS_TABLE_FAULTS);
  assert.deepEqual(
    mix.chaos?.tableFaults?.map((w) => w.kind),
    ["refuse", "throttle", "slow"],
    "a short refusal, a throttling burst, a slow stretch",
  );
  const one = parseLabFlags(["--table", "--chaos", "--table-fault", "slow"]);
  assert.deepEqual(one.chaos?.tableFaults?.map((w) => w.kind), ["slow"]);
  assert.equal(parseLabFlags([]).chaos?.tableFaults, undefined);
});

Deno.test("lab table faults: flags: bad values name the flag and what is allowed", () => {
  const rows: Array<[string[], RegExp]> = [
    [["--table-fault", "refuse"], /--table-fault needs --table/],
    [["--table", "--table-fault", "drop"], /--table-fault: got "drop", expected one of refuse/],
    [["--table", "--table-fault-share", "0.5"], /--table-fault-share needs --table-fault/],
    [
      ["--table", "--table-fault", "throttle", "--table-fault-share", "2"],
      /--table-fault-share: got "2", expected a number from 0 to 1/,
    ],
    [
      ["--table", "--table-fault", "refuse", "--table-refusal", "nope"],
      /--table-refusal: got "nope", expected one of access-denied, not-found/,
    ],
    [
      ["--table", "--table-missing", "--table-fault", "slow"],
      /--table-fault and --table-missing exclude each other/,
    ],
    [["--sigterm-phase-validator-concurrency", "0"], /expected an integer from 1/],
  ];
  for (const [argv, error] of rows) assert.throws(() => parseLabFlags(argv), error, argv.join(" "));
});

Deno.test("lab table faults: flags: the SIGTERM phase's validator, concurrency and slow table", () => {
  const f = parseLabFlags([
    "--sigterm-phase",
    "20",
    "--sigterm-phase-validator-ms",
    "1500",
    "--sigterm-phase-validator-concurrency",
    "4",
    "--sigterm-phase-table-slow-ms",
    "8000",
  ]);
  assert.deepEqual(f.chaos, {
    sigtermPhaseMessages: 20,
    sigtermPhaseValidatorMs: 1500,
    sigtermPhaseValidatorConcurrency: 4,
    sigtermPhaseTableSlowMs: 8000,
  });
  const env = phaseEnv({}, {
    queueUrl: "q",
    endpoint: "e",
    sims: {
      servers: [{ url: "enrich", close: () => Promise.resolve() }, {
        url: "v",
        close: () => Promise.resolve(),
      }],
    },
    slow: true,
    table: { table: "t", proxyUrl: "http://proxy" },
    settings: { validatorMs: 1500, validatorConcurrency: 4, tableSlowMs: 8000 },
  });
  assert.equal(env.VALIDATOR_CONCURRENCY, "4");
  assert.equal(env.SHUTDOWN_GRACE_SECONDS, "2");
  assert.equal(env.IDEMPOTENCY_TABLE, "t");
  assert.equal(env.AWS_ENDPOINT_URL_DYNAMODB, "http://proxy", "the workers go through the faults");
});

Deno.test("lab table faults: dueWindow: in order, each once its share is accepted and the one before has ended", () => {
  const plan: TableFaultWindow[] = [
    { kind: "refuse", seconds: 4, atAccepted: 0.2 },
    { kind: "slow", seconds: 6, atAccepted: 0.5 },
  ];
  // [started, now, runningUntil, accepted of 100] → due kind
  const rows: Array<[number, number, number, number, string | undefined]> = [
    [0, 0, 0, 19, undefined],
    [0, 0, 0, 20, "refuse"],
    [1, 1000, 5000, 60, undefined], // the refusal still runs
    [1, 5000, 5000, 49, undefined],
    [1, 5000, 5000, 50, "slow"],
    [2, 9999, 0, 100, undefined], // every window has run
  ];
  for (const [started, now, until, accepted, kind] of rows) {
    assert.equal(
      dueWindow(plan, started, now, until, accepted, 100)?.kind,
      kind,
      `${started} ${now} ${until} ${accepted}`,
    );
  }
});

Deno.test("lab table faults: refusalLeftMs: a restart after a kill waits out a running refusal, nothing else", () => {
  assert.equal(refusalLeftMs([{ kind: "refuse" }], 5000, 3000), 2000);
  assert.equal(refusalLeftMs([{ kind: "refuse" }], 5000, 6000), 0, "over");
  assert.equal(refusalLeftMs([{ kind: "refuse" }, { kind: "slow" }], 9000, 6000), 0);
  assert.equal(refusalLeftMs([], 0, 6000), 0);
});

Deno.test("lab table faults: the live line counts faulted table requests; the summary shows them, the missing table and the phase's stop", () => {
  const p: LabProgress = {
    phase: "running",
    elapsedSeconds: 3,
    sent: 10,
    received: 10,
    accepted: 5,
    valid: 10,
    rejected: 0,
    deadLettered: 0,
    poison: 0,
    inFlight: 5,
    msgPerSecond: 5,
    kills: 0,
    errors: 0,
    retries: 0,
    breakerOpens: 0,
    tableFaults: 321,
  };
  assert.match(formatProgress(p, "io_mild"), / tbl 321 /);
  assert.doesNotMatch(formatProgress({ ...p, tableFaults: 0 }, "io_mild"), /tbl/);
  const text = formatSummary({
    ...labSummary(),
    tableFaults: {
      requests: 900,
      byAction: {},
      refused: 120,
      throttled: 30,
      slowed: 7,
      windows: [{ kind: "refuse", startedAtSeconds: 2.5, seconds: 40 }],
    },
    tableMissing: missing({}),
    sigtermPhase: {
      sent: 40,
      accepted: 40,
      duplicateSubmissions: 0,
      lost: 0,
      validInDlq: 0,
      firstExitCode: 0,
      firstStopMs: 9100,
      validatorMs: 1500,
      validatorConcurrency: 2,
      tableSlowMs: 8000,
      problems: [],
    },
  });
  assert.match(
    text,
    /table faults\s+refused 120, throttled 30, slowed 7 of 900 requests; refuse at 2.5 s for 40 s/,
  );
  assert.match(
    text,
    /missing table\s+IDEMPOTENCY_TABLE=t-missing: exit 2 after 800 ms; queue 50\/50 visible, 0 in flight, 0 received \(ReceiveMessage 0\)/,
  );
  assert.match(
    text,
    /first exit 0 after 9100 ms \(validator 1500 ms, VALIDATOR_CONCURRENCY 2, table 8000 ms slow\)/,
  );
});

function missing(over: Partial<TableMissingSummary>): TableMissingSummary {
  return {
    table: "t-missing",
    exits: [{ code: 2, ms: 800, lastLine: "IDEMPOTENCY_TABLE does not exist" }],
    sent: 50,
    visible: 50,
    inFlight: 0,
    receiveRequests: 0,
    messagesReceived: 0,
    ...over,
  };
}

Deno.test("lab table faults: tableMissingProblems: exit 2, nothing received, every message visible", () => {
  const rows: Array<[Partial<TableMissingSummary>, RegExp | undefined]> = [
    [{}, undefined],
    [{ exits: [{ code: 1, ms: 5, lastLine: "" }] }, /worker 1 exited with code 1, expected 2/],
    [{ exits: [{ code: null, ms: 30_000, lastLine: "" }] }, /worker 1 still ran 30 s .*SIGKILLed/],
    [{ receiveRequests: 1 }, /received 0 messages \(1 ReceiveMessage requests\)/],
    [{ messagesReceived: 3, receiveRequests: 1 }, /received 3 messages/],
    [
      { visible: 40, inFlight: 10 },
      /the queue was touched: 40 of 50 messages visible, 10 in flight/,
    ],
  ];
  for (const [over, problem] of rows) {
    const problems = tableMissingProblems(missing(over));
    if (problem) assert.match(problems.join("; "), problem, JSON.stringify(over));
    else assert.deepEqual(problems, []);
  }
});

Deno.test("lab table faults: --table-missing: a worker that stops with exit 2 and touches nothing passes, timed", async () => {
  // A stand-in for a worker that checks its table at startup: the lab's reporting is under test.
  const workerCmd = [Deno.execPath(), "eval", "setTimeout(() => Deno.exit(2), 300)"];
  const summary = await runLab({
    ...parseLabFlags(["--table-missing", "--messages", "40", "--users", "50"]),
    workerCmd,
    timeoutSeconds: 60,
  });
  const m = summary.tableMissing;
  assert.ok(m, "the summary reports the missing table");
  assert.equal(m.table, "sluice-idempotency-missing");
  assert.deepEqual(m.exits.map((e) => e.code), [2]);
  assert.ok(m.exits[0]!.ms >= 300, `exit after ${m.exits[0]!.ms} ms`);
  assert.equal(m.sent, 40 + summary.producerDuplicates);
  assert.deepEqual([m.visible, m.inFlight, m.receiveRequests], [m.sent, 0, 0]);
  // Nothing was accepted, and that is right here: the verdict is the missing-table one.
  assert.deepEqual(summary.problems, []);
  assert.equal(summary.ok, true);
});

Deno.test("lab table faults: SIGTERM phase with a slow table: both workers use it, the first stop is timed", async () => {
  const logFile = await Deno.makeTempFile({ prefix: "sluice-phase-" });
  const log = await Deno.open(logFile, { write: true });
  try {
    const summary = await runSigtermPhase({
      cmd: startCommand(),
      cwd: REPO,
      baseEnv: Deno.env.toObject(),
      log: createLogSink(log),
      messages: 4,
      slowMs: 300,
      validatorConcurrency: 3,
      tableSlowMs: 400,
    });
    assert.equal(summary.tableSlowMs, 400);
    assert.equal(summary.validatorMs, 300);
    assert.equal(summary.validatorConcurrency, 3);
    assert.ok(summary.firstStopMs > 0, `stop ${summary.firstStopMs} ms`);
    assert.ok((summary.tableRequests?.PutItem ?? 0) > 0, JSON.stringify(summary.tableRequests));
  } finally {
    log.close();
    await Deno.remove(logFile);
  }
});

Deno.test("lab table faults: refusalMayStart: no refusal within 15 s of a restart; other faults any time", () => {
  assert.equal(refusalMayStart({ kind: "refuse" }, 20_000, 10_000), false, "10 s after a restart");
  assert.equal(refusalMayStart({ kind: "refuse" }, 25_000, 10_000), true);
  assert.equal(refusalMayStart({ kind: "refuse" }, 1000, -Infinity), true, "no restart yet");
  assert.equal(refusalMayStart({ kind: "throttle" }, 11_000, 10_000), true);
});

Deno.test("lab table faults: onLastReceive (chaos): a message whose earlier receives all ended in kills is not killed again on its last", () => {
  const stranded = new Map([["a", 2], ["b", 1]]);
  assert.equal(onLastReceive(["b", "c"], stranded, 3), false);
  assert.equal(onLastReceive(["c", "a"], stranded, 3), true, "a: 2 kills of 3 receives");
  assert.equal(onLastReceive(["b"], stranded, 2), true);
  assert.equal(onLastReceive([], stranded, 3), false);
});
