/**
 * `deno task lab`: parses flags, runs the lab with a live progress line, and
 * prints the summary. Exit code 0 when the run is ok, 1 when not, 2 on bad flags.
 */
import { parseArgs } from "node:util";
import {
  type ChaosOptions,
  DEFAULT_CHAOS,
  type LabOptions,
  type LabProgress,
  type LabSummary,
  runLab,
} from "./lab.ts";
import type { TableFaultSummary } from "./lab_types.ts";
import { formatShares } from "./fleet.ts";
import { formatDuplicateCauses } from "./duplicate_causes.ts";
import { isScenario, SCENARIOS } from "./scenario.ts";
import { CHAOS_TABLE_FAULTS, type TableFaultWindow } from "./lab_types.ts";
import {
  DEFAULT_SLOW_MS,
  DEFAULT_THROTTLE_SHARE,
  type Refusal,
  REFUSALS,
  TABLE_FAULT_KINDS,
  type TableFaultKind,
} from "./table_proxy.ts";
import { formatTableMissing } from "./table_missing.ts";
import { MAX_RECEIVE_COUNT } from "./infra.ts";
import { formatTraceSummary } from "./trace_check.ts";
import { killChildren } from "./children.ts";
import { type LabState, runSend, STATE_FILE } from "./send_command.ts";
import { parseRateLimit } from "../src/domain/rate_limit.ts";

const CHAOS_TABLE_MIX = CHAOS_TABLE_FAULTS.map((w) =>
  w.kind === "refuse"
    ? `a ${w.seconds} s table refusal`
    : w.kind === "throttle"
    ? `a ${w.seconds} s throttling burst`
    : `a ${w.seconds} s slow stretch`
).join(", ");

const USAGE = `usage: deno task lab [flags]
  --scenario NAME           ${SCENARIOS.join(" | ")} (default io_mild)
  --messages N              distinct messages, valid + poison (default 5000)
  --rate N                  messages per second; 0 = preload all before the worker starts (default 0)
  --users N                 known users (default 2000)
  --seed N                  seed of everything random (default 1)
  --poison-share X          (default 0.02)   --duplicate-share X  (default 0.01)
  --unknown-share X         (default 0.01)   --hot-share X        (default 0.2)
  --hot-users K             how many users carry --hot-share (default 1% of --users)
  --rate-limit N/DURATION   RATE_LIMIT for the workers; the summary checks every window of DURATION
  --without-hot             the same messages less the hot users': the quiet users' baseline
  --instant                 enrichment and validator answer at once, no errors (the ceiling)
  --timeout S               give up after S seconds (default 120 + 0.04 per message)
  --json                    print the summary as JSON on stdout
  --infra-only              start the services, preload, print export lines, run until Ctrl-C;
                            then \`deno task lab send --count N --poison K\` adds messages
  --worker-cmd "CMD ARGS"   the worker command (default: deno run ... src/main.ts)
  --workers N               N worker processes on the one queue, each behind a counting validator front
  --table                   dynalite in process; the workers share IDEMPOTENCY_TABLE
  --rate-table              with --table and --rate-limit: RATE_LIMIT_TABLE too, the limit is the
                            fleet's (the judge allows N + workers in a window)
  --fifo                    a FIFO queue and DLQ, a message group per user; the judge counts
                            order inversions per group; --fifo-groups N: N groups, not one per user;
                            --failing-group S: the busiest group's submissions fail for S seconds
                            (p50/p99 are then the other groups')
  --envelopes X             share of valid messages published to an SNS topic the queue subscribes
                            to (the real envelope); --pointers X: share sent as SQS Extended Client
                            S3 pointers (a tenth of the objects 2 MB); both may wrap one message
  --trace                   a local OTLP/HTTP receiver for the worker's spans, half the messages sent
                            with a producer traceparent; prints how many traces arrived whole
  --table-missing           IDEMPOTENCY_TABLE names a table dynalite does not have: the worker must
                            exit 2 at startup and leave the queue untouched (reported and judged)
chaos:
  --crash-rate P            probability per second of SIGKILLing the worker (restarted)
  --crash-after-receive N   SIGKILL once after N messages received
  --slow-every N            every Nth enrichment request is slow ...
  --slow-seconds S          ... by S seconds (default 35)
  --sqs-outage-seconds S    SQS fails for S seconds mid-run
  --redirect-every N        the validator redirects every Nth first submission (never to be followed)
  --table-fault KIND        with --table, once a quarter of the messages is accepted the table
                            (a fault proxy in front of dynalite) fails for a while: refuse (every
                            request answered AccessDenied, ResourceNotFound, ExpiredToken or 500),
                            throttle (a share answered ProvisionedThroughputExceeded/Throttling),
                            slow (every answer held)
  --table-fault-seconds S   how long (default 20)
  --table-fault-share X     throttle: the share refused (default ${DEFAULT_THROTTLE_SHARE})
  --table-slow-ms MS        slow: how late each answer is (default ${DEFAULT_SLOW_MS})
  --table-refusal NAME      refuse: ${REFUSALS.join(" | ")}
                            | mix (default mix: each in turn)
  --sigterm-phase N         after the run, SIGTERM a worker while the validator is slow, on a
                            queue with maxReceiveCount 1 (N messages, N more during the drain)
  --sigterm-phase-validator-ms MS           the phase's validator delay (default ${DEFAULT_CHAOS.sigtermPhaseValidatorMs})
  --sigterm-phase-validator-concurrency N   its first worker's VALIDATOR_CONCURRENCY (default ${DEFAULT_CHAOS.sigtermPhaseValidatorConcurrency})
  --sigterm-phase-table-slow-ms MS          the phase's workers share a table, every answer MS late
                                            for the first worker; its stop time is reported
  --chaos                   a mix: crash rate ${DEFAULT_CHAOS.crashRate}/s (until 90 % is accepted), a crash after a third of the
                            messages, every ${DEFAULT_CHAOS.slowEvery}th enrichment ${DEFAULT_CHAOS.slowSeconds} s late, a ${DEFAULT_CHAOS.sqsOutageSeconds} s SQS outage,
                            every ${DEFAULT_CHAOS.redirectEvery}th first submission redirected, a SIGTERM phase of
                            ${DEFAULT_CHAOS.sigtermPhaseMessages} messages; with --table also
                            ${CHAOS_TABLE_MIX}
the live line:
  N/s         valid messages accepted per second over the last 2 s
  acc A/V     accepted by the validator / valid messages sent
  dlq D/P     messages in the dead-letter queue / poison messages sent
  err E       429, 5xx and timeouts the enrichment API and validator answered
  retry R     retries the worker made in process (sluice_retries_total)
  open B      circuit breakers seen opening (sluice_breaker_state turning to open)
  kill K      workers SIGKILLed by chaos (only with chaos)
  tbl T       table requests the fault proxy refused, throttled or slowed (only with table faults)
the summary:
  lost                 valid messages never accepted (must be 0)
  duplicate submissions  valid messages accepted twice, by cause: at a SIGKILL (sent by the killed
                       worker, sent again after it), producer copies, redeliveries; 0 unless chaos
                       killed a worker or several workers run without --table (with it, only a kill's)
  wrongly rejected     valid messages the validator refused (must be 0)
  poison in DLQ        poison dead-lettered with sluice_error and sluice_reason
  left in queue        messages still in the main queue at the end
  downstream errors    429, 5xx and timeouts the simulators answered
  retries              the worker's in-process retries
  breaker opens        circuit breakers seen opening
  table faults         requests refused / throttled / slowed by the table's fault proxy, the windows
  throughput           accepted + dead-lettered poison, per second of the run
  quiet users          receive→accept of the users that are not hot (--hot-users), and the hot p99
  worst window         the busiest users' submissions in one sliding window of --rate-limit's
                       DURATION (1 s without it), as the validator saw them; over N fails the run`;

class FlagError extends Error {}

/** The flags parseArgs knows (all values are strings checked by `num`). */
const FLAGS = {
  scenario: { type: "string" },
  messages: { type: "string" },
  rate: { type: "string" },
  users: { type: "string" },
  seed: { type: "string" },
  "poison-share": { type: "string" },
  "duplicate-share": { type: "string" },
  "unknown-share": { type: "string" },
  "hot-share": { type: "string" },
  "hot-users": { type: "string" },
  "rate-limit": { type: "string" },
  "without-hot": { type: "boolean" },
  instant: { type: "boolean" },
  timeout: { type: "string" },
  json: { type: "boolean" },
  "infra-only": { type: "boolean" },
  "worker-cmd": { type: "string" },
  "crash-rate": { type: "string" },
  "crash-after-receive": { type: "string" },
  "slow-every": { type: "string" },
  "slow-seconds": { type: "string" },
  "sqs-outage-seconds": { type: "string" },
  "sigterm-phase": { type: "string" },
  chaos: { type: "boolean" },
  "redirect-every": { type: "string" },
  workers: { type: "string" },
  table: { type: "boolean" },
  "rate-table": { type: "boolean" },
  fifo: { type: "boolean" },
  "failing-group": { type: "string" },
  "fifo-groups": { type: "string" },
  envelopes: { type: "string" },
  pointers: { type: "string" },
  trace: { type: "boolean" },
  "table-missing": { type: "boolean" },
  "table-fault": { type: "string" },
  "table-fault-seconds": { type: "string" },
  "table-fault-share": { type: "string" },
  "table-slow-ms": { type: "string" },
  "table-refusal": { type: "string" },
  "sigterm-phase-table-slow-ms": { type: "string" },
  "sigterm-phase-validator-ms": { type: "string" },
  "sigterm-phase-validator-concurrency": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type FlagValues = ReturnType<typeof parseArgs<{ options: typeof FLAGS }>>["values"];

/** Flags to LabOptions; throws FlagError with a one-line message. */
export function parseLabFlags(argv: string[]): LabOptions & { help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: false, options: FLAGS });
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  const v = parsed.values;
  const scenario = v.scenario ?? "io_mild";
  if (!isScenario(scenario)) {
    throw new FlagError(
      `--scenario: got ${JSON.stringify(scenario)}, expected one of ${SCENARIOS.join(", ")}`,
    );
  }
  const messages = num("messages", v.messages, 5000, 1, 10_000_000, true);
  const chaos = parseChaos(v, messages);
  const workerCmd = v["worker-cmd"]?.trim().split(/\s+/);
  if (workerCmd && workerCmd.length === 0) throw new FlagError("--worker-cmd: empty command");
  const timeout = opt("timeout", v.timeout, 1, 86_400, false);
  const workers = opt("workers", v.workers, 1, 64, true);
  const fifoGroups = opt("fifo-groups", v["fifo-groups"], 1, 1_000_000, true);
  const hotUsers = opt("hot-users", v["hot-users"], 1, 10_000_000, true);
  if (fifoGroups !== undefined && !v.fifo) throw new FlagError("--fifo-groups needs --fifo");
  const failing = opt("failing-group", v["failing-group"], 1, 3600, false);
  if (failing !== undefined && !v.fifo) throw new FlagError("--failing-group needs --fifo");
  const envelopeShare = opt("envelopes", v.envelopes, 0, 1, false);
  const pointerShare = opt("pointers", v.pointers, 0, 1, false);
  if (v.fifo && (envelopeShare || pointerShare)) {
    throw new FlagError("--envelopes and --pointers need a standard queue, not --fifo");
  }
  return {
    help: v.help ?? false,
    scenario,
    messages,
    rate: num("rate", v.rate, 0, 0, 1_000_000, false),
    users: num("users", v.users, 2000, 1, 10_000_000, true),
    seed: num("seed", v.seed, 1, 0, 2 ** 32 - 1, true),
    poisonShare: num("poison-share", v["poison-share"], 0.02, 0, 1, false),
    duplicateShare: num("duplicate-share", v["duplicate-share"], 0.01, 0, 1, false),
    unknownShare: num("unknown-share", v["unknown-share"], 0.01, 0, 1, false),
    hotShare: num("hot-share", v["hot-share"], 0.2, 0, 1, false),
    ...(hotUsers !== undefined ? { hotUsers } : {}),
    ...(v["rate-limit"] !== undefined ? { rateLimit: rateLimitFlag(v["rate-limit"]) } : {}),
    ...(v["without-hot"] ? { withoutHot: true } : {}),
    instant: v.instant ?? false,
    infraOnly: v["infra-only"] ?? false,
    json: v.json ?? false,
    ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}),
    ...(workerCmd ? { workerCmd } : {}),
    ...(workers !== undefined ? { workers } : {}),
    ...(v.table ? { table: true } : {}),
    ...(rateTableFlag(v) ? { rateTable: true } : {}),
    ...(v.fifo ? { fifo: true } : {}),
    ...(fifoGroups !== undefined ? { fifoGroups } : {}),
    ...(failing !== undefined ? { failingGroupSeconds: failing } : {}),
    ...(envelopeShare ? { envelopeShare } : {}),
    ...(pointerShare ? { pointerShare } : {}),
    ...(v.trace ? { trace: true } : {}),
    ...(v["table-missing"] ? { tableMissing: true } : {}),
    chaos,
  };
}

/** `--table-fault` and its modifiers: one window, instead of the `--chaos` mix's. */
function parseTableFault(v: FlagValues): TableFaultWindow | undefined {
  const kind = v["table-fault"];
  const modifiers = ["table-fault-seconds", "table-fault-share", "table-slow-ms", "table-refusal"]
    .filter((name) => v[name as keyof FlagValues] !== undefined);
  if (kind === undefined) {
    if (modifiers.length) throw new FlagError(`--${modifiers[0]} needs --table-fault`);
    return undefined;
  }
  if (!TABLE_FAULT_KINDS.includes(kind as TableFaultKind)) {
    throw new FlagError(
      `--table-fault: got ${JSON.stringify(kind)}, expected one of ${TABLE_FAULT_KINDS.join(", ")}`,
    );
  }
  if (!v.table) throw new FlagError("--table-fault needs --table");
  if (v["table-missing"]) {
    throw new FlagError("--table-fault and --table-missing exclude each other");
  }
  const refusal = v["table-refusal"] ?? "mix";
  if (refusal !== "mix" && !REFUSALS.includes(refusal as Refusal)) {
    throw new FlagError(
      `--table-refusal: got ${JSON.stringify(refusal)}, expected one of ${
        REFUSALS.join(", ")
      }, mix`,
    );
  }
  const window: TableFaultWindow = {
    kind: kind as TableFaultKind,
    seconds: num("table-fault-seconds", v["table-fault-seconds"], 20, 1, 3600, false),
    atAccepted: 0.25,
  };
  if (kind === "refuse") window.refusal = refusal as Refusal | "mix";
  if (kind === "throttle") {
    window.share = num(
      "table-fault-share",
      v["table-fault-share"],
      DEFAULT_THROTTLE_SHARE,
      0,
      1,
      false,
    );
  }
  if (kind === "slow") {
    window.slowMs = num("table-slow-ms", v["table-slow-ms"], DEFAULT_SLOW_MS, 0, 600_000, true);
  }
  return window;
}

/** `--chaos` (the mix) with the single chaos flags on top. */
function parseChaos(v: FlagValues, messages: number): ChaosOptions {
  const chaos: ChaosOptions = v.chaos
    ? { ...DEFAULT_CHAOS, crashAfterReceive: Math.max(1, Math.floor(messages / 3)) }
    : {};
  const setChaos = <K extends NumericChaosKey>(key: K, value: number | undefined) => {
    if (value !== undefined) chaos[key] = value;
  };
  setChaos("crashRate", opt("crash-rate", v["crash-rate"], 0, 1, false));
  setChaos("crashAfterReceive", opt("crash-after-receive", v["crash-after-receive"], 0, 1e9, true));
  setChaos("slowEvery", opt("slow-every", v["slow-every"], 0, 1e9, true));
  setChaos("slowSeconds", opt("slow-seconds", v["slow-seconds"], 0, 3600, false));
  setChaos("sqsOutageSeconds", opt("sqs-outage-seconds", v["sqs-outage-seconds"], 0, 3600, false));
  setChaos("redirectEvery", opt("redirect-every", v["redirect-every"], 0, 1e9, true));
  setChaos("sigtermPhaseMessages", opt("sigterm-phase", v["sigterm-phase"], 0, 10_000, true));
  setChaos(
    "sigtermPhaseTableSlowMs",
    opt("sigterm-phase-table-slow-ms", v["sigterm-phase-table-slow-ms"], 0, 600_000, true),
  );
  setChaos(
    "sigtermPhaseValidatorMs",
    opt("sigterm-phase-validator-ms", v["sigterm-phase-validator-ms"], 0, 600_000, true),
  );
  setChaos(
    "sigtermPhaseValidatorConcurrency",
    opt(
      "sigterm-phase-validator-concurrency",
      v["sigterm-phase-validator-concurrency"],
      1,
      1000,
      true,
    ),
  );
  const tableFault = parseTableFault(v);
  if (tableFault) chaos.tableFaults = [tableFault];
  return chaos;
}

type NumericChaosKey = {
  [K in keyof ChaosOptions]-?: ChaosOptions[K] extends number | undefined ? K : never;
}[keyof ChaosOptions];

/** A numeric flag, `dflt` when absent; FlagError when not a number in [min, max]. */
function num(
  name: string,
  raw: string | undefined,
  dflt: number,
  min: number,
  max: number,
  int: boolean,
): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (
    raw.trim() === "" || !Number.isFinite(n) || (int && !Number.isInteger(n)) || n < min ||
    n > max
  ) {
    throw new FlagError(
      `--${name}: got ${JSON.stringify(raw)}, expected ${
        int ? "an integer" : "a number"
      } from ${min} to ${max}`,
    );
  }
  return n;
}

/** The quiet and hot users' latencies and the busiest users' worst windows, when counted. */
function keyRows(s: LabSummary): Array<[string, string]> {
  const w = s.keyWindows;
  if (!w) return [];
  return [
    ["quiet users p50 / p99, hot p99", `${s.quietP50Ms} / ${s.quietP99Ms} ms, ${s.hotP99Ms} ms`],
    [
      `worst ${w.windowMs} ms window per user`,
      w.worstKeys.map((k) => `${k.key}=${k.submissions}`).join(" "),
    ],
  ];
}

/** `--rate-table`: needs the table and a limit to share. */
function rateTableFlag(v: FlagValues): boolean {
  if (!v["rate-table"]) return false;
  if (!v.table || v["rate-limit"] === undefined) {
    throw new FlagError("--rate-table needs --table and --rate-limit");
  }
  return true;
}

/** `--rate-limit`: a RATE_LIMIT value the worker will take. */
function rateLimitFlag(raw: string): string {
  if (parseRateLimit(raw)) return raw.trim();
  throw new FlagError(
    `--rate-limit: got ${JSON.stringify(raw)}, expected N/DURATION (20/1s, 600/1m, 1000/1h)`,
  );
}

/** An optional numeric flag: undefined when absent. */
function opt(
  name: string,
  raw: string | undefined,
  min: number,
  max: number,
  int: boolean,
): number | undefined {
  return raw === undefined ? undefined : num(name, raw, 0, min, max, int);
}

/** The live line, rate first; parts of least use are dropped until it fits `width` columns. */
export function formatProgress(p: LabProgress, _scenario: string, width = 80): string {
  // With --infra-only the user's worker and `lab send` add messages the preloaded set does not
  // count: its totals would be wrong denominators.
  const of = (n: number) => p.phase === "infra" ? "" : `/${n}`;
  const parts = [
    `${Math.round(p.msgPerSecond)}/s`,
    `acc ${p.accepted}${of(p.valid)}`,
    `dlq ${p.deadLettered}${of(p.poison)}`,
    `err ${p.errors}`,
    `retry ${p.retries}`,
    `open ${p.breakerOpens}`,
    ...(p.kills ? [`kill ${p.kills}`] : []),
    ...(p.tableFaults ? [`tbl ${p.tableFaults}`] : []),
    `${p.phase === "running" ? "" : `${p.phase} `}${Math.round(p.elapsedSeconds)}s`,
  ];
  const line = parts.join(" ");
  // The elapsed time goes first; the counts people watch stay.
  const shorter = line.length <= width ? line : parts.slice(0, -1).join(" ");
  return shorter.slice(0, width);
}

export interface PlainProgress {
  at: number;
  phase: LabProgress["phase"] | undefined;
}

/**
 * Piped (not a terminal), the live line is printed, not redrawn: at each change of phase and every
 * 5 s between, so a short run still shows its phases. Updates `last` when it says yes.
 */
export function printPlain(last: PlainProgress, phase: LabProgress["phase"], now: number): boolean {
  if (phase === last.phase && now - last.at < 5000) return false;
  last.at = now;
  last.phase = phase;
  return true;
}

/** The summary as an aligned two-column table plus the problems. */
export function formatSummary(s: LabSummary): string {
  const rows: Array<[string, string | number]> = [
    ["scenario", s.scenario],
    ["messages (valid / poison)", `${s.messages} (${s.valid} / ${s.poison})`],
    ["producer duplicates", s.producerDuplicates],
    ["accepted", `${s.accepted} / ${s.valid}`],
    ["lost", s.lost],
    [
      "duplicate submissions",
      (s.duplicateCauses && s.duplicateSubmissions
        ? formatDuplicateCauses(s.duplicateSubmissions, s.duplicateCauses)
        : s.duplicateSubmissions) +
      (s.table
        ? ` (allowed up to ${s.onWireAtKills ?? 0}: on the wire at kills)`
        : s.killedInFlight
        ? ` (allowed up to ${s.killedInFlight})`
        : ""),
    ],
    [
      "idempotency table",
      s.tableRequests
        ? `yes (dynalite): ${
          Object.entries(s.tableRequests).map(([k, n]) => `${k}=${n}`).join(" ")
        }`
        : "no",
    ],
    ["wrongly rejected", s.wronglyRejected],
    ...(s.orderInversions !== undefined
      ? [["order inversions (FIFO)", s.orderInversions] as [string, number]]
      : []),
    ...(s.failingGroup !== undefined
      ? [["failing group", `${s.failingGroup} (p50/p99 below are the other groups')`] as [
        string,
        string,
      ]]
      : []),
    [
      "poison in DLQ",
      `${s.poisonInDlq} / ${s.poison} (DLQ holds ${s.deadLettered}, ${s.dlqExtraCopies} extra copies)`,
    ],
    ...(s.strandedOut
      ? [[
        "valid in the DLQ after kills",
        `${s.strandedOut} (in flight at a kill on each of its ${MAX_RECEIVE_COUNT} receives: moved by SQS)`,
      ] as [string, string]]
      : []),
    ["left in queue", s.leftInQueue],
    ["worker kills (in flight)", `${s.kills} (${s.killedInFlight})`],
    ["downstream errors", s.downstreamErrors],
    ...(s.scenario === "brownout" || s.scenario === "outage"
      ? [[
        "enrich calls in the windows",
        `${s.enrichBrownoutRequests}` + (s.enrichRecoveryMs !== undefined
          ? `; first success ${Math.round(s.enrichRecoveryMs)} ms after the first window`
          : ""),
      ] as [string, string]]
      : []),
    ["retries", s.retries],
    ["breaker opens", s.breakerOpens],
    ...(s.tableFaults
      ? [["table faults", formatTableFaults(s.tableFaults)] as [string, string]]
      : []),
    ...(s.tableMissing
      ? [["missing table", formatTableMissing(s.tableMissing)] as [string, string]]
      : []),
    ...(s.traces ? [["traces (OTLP)", formatTraceSummary(s.traces)] as [string, string]] : []),
    ...(s.workers?.length
      ? [
        ["per worker (accepted, rate)", formatShares(s.workers)] as [string, string],
        ["submissions on the wire at kills", s.onWireAtKills ?? 0] as [string, number],
      ]
      : []),
    ["duration", `${s.durationSeconds.toFixed(2)} s`],
    ["throughput", `${s.msgPerSecond} msg/s`],
    ["receive→accept p50 / p99", `${s.p50Ms} ms / ${s.p99Ms} ms`],
    ...keyRows(s),
    ["SQS requests (per message)", `${s.sqsRequests} (${s.sqsRequestsPerMessage})`],
    ["SQS by action", Object.entries(s.sqsRequestsByAction).map(([k, n]) => `${k}=${n}`).join(" ")],
    ["enrich requests (per message)", `${s.enrichRequests} (${s.enrichRequestsPerMessage})`],
    ["enrich ids per message", s.enrichIdsPerMessage],
    ["peak RSS", `${s.peakRssMb} MB`],
    ["worker log", s.logFile],
    ["result", s.ok ? "OK" : "FAILED"],
  ];
  const t = s.sigtermPhase;
  if (t) {
    rows.splice(rows.length - 2, 0, [
      "SIGTERM phase (maxReceiveCount 1)",
      `accepted ${t.accepted} / ${t.sent}, lost ${t.lost}, duplicates ${t.duplicateSubmissions}, ` +
      `valid in DLQ ${t.validInDlq}, first exit ${t.firstExitCode} after ${t.firstStopMs} ms ` +
      `(validator ${t.validatorMs} ms, VALIDATOR_CONCURRENCY ${t.validatorConcurrency}, ` +
      `${t.tableSlowMs ? `table ${t.tableSlowMs} ms slow` : "no table"})`,
    ]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
  for (const p of s.problems) lines.push(`  ✗ ${p}`);
  return lines.join("\n");
}

/** "refused 120, throttled 300, slowed 80 of 4000 requests; refuse at 3.1 s for 4 s, ...". */
export function formatTableFaults(f: TableFaultSummary): string {
  const windows = f.windows.map((w) => `${w.kind} at ${w.startedAtSeconds} s for ${w.seconds} s`);
  return `refused ${f.refused}, throttled ${f.throttled}, slowed ${f.slowed} of ${f.requests} ` +
    `requests${windows.length ? `; ${windows.join(", ")}` : "; no window started"}`;
}

async function main(): Promise<number> {
  if (Deno.args[0] === "send") return await runSend(Deno.args.slice(1));
  let options: ReturnType<typeof parseLabFlags>;
  try {
    options = parseLabFlags(Deno.args);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    console.error(`lab: ${err.message} (see --help)`);
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const stop = new AbortController();
  // The first Ctrl-C (or SIGTERM) stops the run the orderly way: workers drained, a summary. The
  // second stops everything at once.
  const onSignal = () => {
    if (!stop.signal.aborted) return stop.abort(new Error("interrupted"));
    const killed = killChildren();
    console.error(`\nlab: interrupted again: ${killed} child processes killed`);
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const tty = Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  const plain: PlainProgress = { at: Number.NEGATIVE_INFINITY, phase: undefined };
  let drawn = false;
  const onProgress = (p: LabProgress) => {
    if (tty) {
      // A wrapped line could not be redrawn with \r: it must fit the terminal.
      let columns = 81;
      try {
        columns = Deno.consoleSize().columns;
      } catch {
        // not a console after all
      }
      const line = formatProgress(p, options.scenario, Math.max(20, Math.min(80, columns - 1)));
      Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${line}`));
      drawn = true;
    } else if (printPlain(plain, p.phase, Date.now())) {
      console.error(formatProgress(p, options.scenario));
    }
  };
  const endLine = () => {
    if (drawn) Deno.stderr.writeSync(encoder.encode("\n"));
    drawn = false;
  };
  try {
    const summary = await runLab({
      ...options,
      onProgress,
      signal: stop.signal,
      onInfraReady: (env) => {
        if (!options.infraOnly) return;
        endLine();
        announceInfra(env, options);
      },
    });
    endLine();
    if (options.json) console.log(JSON.stringify(summary, null, 2));
    else console.log(formatSummary(summary));
    return summary.ok ? 0 : 1;
  } finally {
    if (options.infraOnly) {
      try {
        Deno.removeSync(STATE_FILE);
      } catch {
        // never written: the services did not come up
      }
    }
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

/** Prints the lines to paste and records the queue for `lab send`. */
function announceInfra(env: Record<string, string>, options: { seed: number; users: number }) {
  for (const line of infraLines(env)) console.log(line);
  const state: LabState = {
    queueUrl: env.SQS_QUEUE_URL!,
    endpoint: env.AWS_ENDPOINT_URL_SQS!,
    seed: options.seed,
    users: options.users,
  };
  Deno.writeTextFileSync(STATE_FILE, JSON.stringify(state));
  console.error(
    "lab: services running; paste the export lines in another terminal, run " +
      "`npx -y deno@2.9.6 task start` there; `npx -y deno@2.9.6 task lab send --count 100` adds " +
      "messages. Ctrl-C stops.",
  );
}

/** Ready-to-paste lines for a worker the user starts: exports, then the worker's curl lines. */
export function infraLines(env: Record<string, string>): string[] {
  const port = env.HTTP_PORT ?? "9400";
  const pasted = { ...env, SQS_QUEUE_URL: onEndpoint(env.SQS_QUEUE_URL, env.AWS_ENDPOINT_URL_SQS) };
  return [
    ...Object.entries(pasted).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    `# then: npx -y deno@2.9.6 task start   (or the built binary dist/sluice)`,
    `# curl -s localhost:${port}/healthz; curl -s localhost:${port}/metrics | head`,
  ];
}

/**
 * The queue URL on the SQS endpoint's host: the emulator's own `sqs.us-east-1.localhost` name
 * resolves on few machines, so a pasted URL would work only beside AWS_ENDPOINT_URL_SQS.
 */
function onEndpoint(queueUrl: string | undefined, endpoint: string | undefined): string {
  if (!queueUrl || !endpoint || !URL.canParse(queueUrl) || !URL.canParse(endpoint)) {
    return queueUrl ?? "";
  }
  return new URL(new URL(queueUrl).pathname, endpoint).href;
}

function shellQuote(v: string): string {
  return /^[A-Za-z0-9_./:@=-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

if (import.meta.main) {
  // Deno.exit leaves child processes running, and an uncaught error skips the teardown: on every
  // way out, what is still running is killed.
  globalThis.addEventListener("unload", () => killChildren());
  globalThis.addEventListener("error", () => killChildren());
  globalThis.addEventListener("unhandledrejection", () => killChildren());
  Deno.exit(await main());
}
