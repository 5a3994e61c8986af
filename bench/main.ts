/**
 * `deno task bench`: runs the lab per scenario for sluice and the two baselines on the same
 * seeded message stream, plus the ceiling run (sluice with instant downstreams on io_mild), then
 * prints the report and writes bench/RESULTS.md and bench/throughput.svg (contract §9).
 *
 * Flags:
 *   --scenarios a,b          scenarios to run (default io_mild,io_heavy,flaky,brownout)
 *   --messages N             messages per run (default 20000)
 *   --baseline-messages N    messages for each baseline run (default: --messages)
 *   --brownout-messages N    messages of the full runs in brownout (default: --messages); the
 *                            efficiency comparison uses 6000
 *   --baseline-seconds S     time cap of a baseline run, from its first receive (default 60)
 *   --users N, --seed N      lab dataset (defaults 2000, 1)
 *   --workers a,b            subset of sluice,binary,lean,naive,sqs-consumer,ceiling (default all;
 *                            binary only when dist/sluice is built)
 *   --repeat N               run sluice, the binary, the lean baseline and the ceiling N times,
 *                            in rounds (one of each, then again);
 *                            the report shows the median of each figure (default 1)
 *   --quick                  smoke run: 3000 messages, baselines capped at 10 s
 *   --no-write               print only; leave RESULTS.md and throughput.svg alone
 *   --fleet                  1, 2 and 4 workers on one queue, without and with the idempotency
 *                            table (bench/fleet.ts); writes only the Fleet section of RESULTS.md;
 *                            --validator-ms LO,HI (default 300,400), --no-saturated, --counts, --rate
 *   --variants a,b           plain sluice against one change at a time (bench/variants.ts): fifo,
 *                            fifo-failing, traced, trace (taken against traced), before (with
 *                            --before DIR); writes only the
 *                            Variants section; with --paired each variant runs beside its base on
 *                            one CPU (bench/paired.ts), for CPU ratios steady to a few per cent
 */
import { BENCH_MIX } from "./workload.ts";
import {
  type LabOptions,
  type LabProgress,
  type LabSummary,
  runLab,
  type Scenario,
} from "../lab/lab.ts";
import {
  type BenchContext,
  type BenchRun,
  efficiencyOf,
  throughput,
  type WorkerName,
} from "./bench_run.ts";
import { renderMarkdown } from "./results_markdown.ts";
import { renderSvg } from "./throughput_svg.ts";
import { runFleetBench } from "./fleet.ts";
import { runVariantsBench } from "./variants.ts";

const ALL_SCENARIOS: Scenario[] = ["io_mild", "io_heavy", "flaky", "brownout"];
/** Run only when asked for (`--scenarios outage`): a 10 s enrichment outage. */
const MORE_SCENARIOS: Scenario[] = ["outage"];
const ALL_WORKERS: WorkerName[] = ["sluice", "binary", "lean", "naive", "sqs-consumer", "ceiling"];
/** The compiled worker (`deno task build`); its row is skipped by default when it is missing. */
const BINARY = new URL("../dist/sluice", import.meta.url).pathname;
/** Workers that run the whole queue (not capped by time) and are repeated with --repeat. */
const FULL_RUN: readonly WorkerName[] = ["sluice", "binary", "lean", "ceiling"];
/** RESULTS.md keeps everything below this line across bench runs (profiles, decisions). */
export const NOTES_MARKER = "<!-- hand-written notes below: deno task bench keeps them -->";

function binaryBuilt(): boolean {
  try {
    return Deno.statSync(BINARY).isFile;
  } catch {
    return false;
  }
}

/** Parsed command line. */
export interface BenchFlags {
  scenarios: Scenario[];
  workers: WorkerName[];
  messages: number;
  /** messages of the full (uncapped) brownout runs; 0 = same as messages */
  brownoutMessages: number;
  baselineMessages: number;
  baselineSeconds: number;
  users: number;
  seed: number;
  quick: boolean;
  write: boolean;
  /** sluice and ceiling runs per scenario; the median by msg/s is reported */
  repeat: number;
}

function fail(message: string): never {
  console.error(`bench: ${message}`);
  Deno.exit(2);
}

function positiveInt(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isSafeInteger(n) || n <= 0) {
    fail(`${flag} needs a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Parses argv; exits 2 with one line on a bad flag. */
export function parseFlags(args: string[]): BenchFlags {
  const quick = args.includes("--quick");
  const flags: BenchFlags = {
    scenarios: [...ALL_SCENARIOS],
    workers: ALL_WORKERS.filter((w) => w !== "binary" || binaryBuilt()),
    messages: quick ? 3000 : 20000,
    baselineMessages: 0, // 0: same as messages, resolved after parsing
    brownoutMessages: 0,
    baselineSeconds: quick ? 10 : 60,
    users: 2000,
    seed: 1,
    quick,
    write: true,
    repeat: 1,
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.includes("=") ? arg.split("=", 2) as [string, string] : [arg];
    const value = () => inline ?? args[++i];
    switch (name) {
      case "--quick":
        break;
      case "--no-write":
        flags.write = false;
        break;
      case "--scenarios": {
        const list = (value() ?? "").split(",").filter((s) => s !== "");
        for (const s of list) {
          if (![...ALL_SCENARIOS, ...MORE_SCENARIOS].includes(s as Scenario)) {
            const allowed = [...ALL_SCENARIOS, ...MORE_SCENARIOS].join(", ");
            fail(`unknown scenario ${JSON.stringify(s)}; allowed: ${allowed}`);
          }
        }
        if (list.length === 0) fail("--scenarios needs a comma-separated list");
        flags.scenarios = list as Scenario[];
        break;
      }
      case "--workers": {
        const list = (value() ?? "").split(",").filter((s) => s !== "");
        for (const w of list) {
          if (!ALL_WORKERS.includes(w as WorkerName)) {
            fail(`unknown worker ${JSON.stringify(w)}; allowed: ${ALL_WORKERS.join(", ")}`);
          }
        }
        if (list.length === 0) fail("--workers needs a comma-separated list");
        flags.workers = list as WorkerName[];
        break;
      }
      case "--messages":
        flags.messages = positiveInt(name, value());
        break;
      case "--brownout-messages":
        flags.brownoutMessages = positiveInt(name, value());
        break;
      case "--baseline-messages":
        flags.baselineMessages = positiveInt(name, value());
        break;
      case "--baseline-seconds":
        flags.baselineSeconds = positiveInt(name, value());
        break;
      case "--repeat":
        flags.repeat = positiveInt(name, value());
        break;
      case "--users":
        flags.users = positiveInt(name, value());
        break;
      case "--seed":
        flags.seed = positiveInt(name, value());
        break;
      default:
        fail(`unknown flag ${JSON.stringify(arg)}`);
    }
  }
  if (flags.baselineMessages === 0) flags.baselineMessages = flags.messages;
  if (flags.brownoutMessages === 0) flags.brownoutMessages = flags.messages;
  return flags;
}

/** The 1/5/15-minute load averages, or "unknown" off Linux. */
export async function loadAverage(): Promise<string> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

async function machineContext(flags: BenchFlags, args: string[]): Promise<BenchContext> {
  let cpuModel = "unknown CPU";
  try {
    const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux: keep "unknown CPU"
  }
  return {
    date: new Date().toISOString(),
    command: ["deno task bench", ...args].join(" "),
    nproc: navigator.hardwareConcurrency,
    cpuModel,
    memoryGb: Deno.systemMemoryInfo().total / 1024 ** 3,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    runtime: `Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`,
    loadAtStart: await loadAverage(),
    loadAtEnd: "",
    messages: flags.messages,
    baselineMessages: flags.baselineMessages,
    brownoutMessages: flags.brownoutMessages,
    baselineSeconds: flags.baselineSeconds,
    repeat: flags.repeat,
    users: flags.users,
    seed: flags.seed,
  };
}

/** Lab options for one worker in one scenario; everything but the worker and count is shared. */
function labOptions(flags: BenchFlags, scenario: Scenario, worker: WorkerName): LabOptions {
  const base: LabOptions = {
    scenario,
    messages: flags.messages,
    rate: 0,
    users: flags.users,
    seed: flags.seed,
    ...BENCH_MIX,
  };
  switch (worker) {
    case "sluice":
      // Literally `deno task start`, as the issue measures it: the tree's CPU and RSS include
      // the `deno task` process (it forwards SIGTERM to the worker).
      return { ...base, workerCmd: [Deno.execPath(), "task", "--quiet", "start"] };
    case "ceiling":
      return { ...base, instant: true };
    case "binary":
      return { ...base, workerCmd: [BINARY] };
    case "lean":
      return {
        ...base,
        workerCmd: [
          Deno.execPath(),
          "run",
          "-A",
          new URL("./lean_worker.ts", import.meta.url).pathname,
        ],
      };
    case "naive":
    case "sqs-consumer":
      return {
        ...base,
        messages: flags.baselineMessages,
        workerCmd: [
          Deno.execPath(),
          "run",
          "-A",
          new URL(
            worker === "naive" ? "./naive_worker.ts" : "./sqs_consumer_worker.ts",
            import.meta.url,
          ).pathname,
        ],
      };
  }
}

function progressLine(label: string, p: LabProgress): string {
  return `${label} ${p.phase} ${
    p.elapsedSeconds.toFixed(0)
  } s: accepted ${p.accepted}/${p.valid}, ` +
    `in flight ${p.inFlight}, ${p.msgPerSecond.toFixed(0)} msg/s`;
}

async function runOne(flags: BenchFlags, scenario: Scenario, worker: WorkerName) {
  const options = labOptions(flags, scenario, worker);
  if (scenario === "brownout" && FULL_RUN.includes(worker)) {
    options.messages = flags.brownoutMessages;
  }
  const label = `[${scenario} ${worker}]`;
  const encoder = new TextEncoder();
  const capSeconds = worker === "naive" || worker === "sqs-consumer"
    ? flags.baselineSeconds
    : undefined;
  // The time cap starts at the worker's first receive, not at the lab's start, so preloading the
  // queue does not eat into it; the lab then stops the worker and measures from its first receive.
  const cap = new AbortController();
  let capTimer: ReturnType<typeof setTimeout> | undefined;
  if (capSeconds !== undefined) {
    options.signal = cap.signal;
    // A safety net only: the cap below ends the run long before this.
    options.timeoutSeconds = capSeconds + 600;
  }
  let lastProgress = 0;
  options.onProgress = (p) => {
    if (capSeconds !== undefined && capTimer === undefined && p.received > 0) {
      capTimer = setTimeout(() => cap.abort(new Error("time cap")), capSeconds * 1000);
    }
    const now = Date.now();
    if (now - lastProgress < 1000 || !Deno.stderr.isTerminal()) return;
    lastProgress = now;
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[K${progressLine(label, p)}`));
  };
  const run: BenchRun = {
    scenario,
    worker,
    messages: options.messages,
    ...(capSeconds === undefined ? {} : { capSeconds }),
  };
  try {
    const summary: LabSummary = await runLab(options);
    run.summary = summary;
  } catch (err) {
    run.error = err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(capTimer);
  }
  if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
  const s = run.summary;
  console.error(
    s === undefined
      ? `${label} failed: ${run.error}`
      : `${label} ${s.accepted}/${s.valid} accepted in ${s.durationSeconds.toFixed(1)} s: ` +
        `${s.msgPerSecond.toFixed(1)} msg/s, p50 ${s.p50Ms.toFixed(0)} ms, p99 ${
          s.p99Ms.toFixed(0)
        } ms, SQS ${s.sqsRequestsPerMessage} req/msg, enrich ${s.enrichRequestsPerMessage} req/msg, ` +
        `lost ${s.lost}, dup ${s.duplicateSubmissions}, RSS ${s.peakRssMb.toFixed(0)} MB` +
        (s.problems.length > 0 ? `; ${s.problems.join("; ")}` : ""),
  );
  return run;
}

/**
 * The run with the median msg/s (failed runs sort first); all rates kept in `repeats`, every
 * run's efficiency figures in `tries` (the report takes the median of each figure).
 */
export function medianRun(tries: BenchRun[]): BenchRun {
  const figures = tries.flatMap((t) => {
    const e = efficiencyOf(t);
    return e === undefined ? [] : [e];
  });
  if (tries.length === 1) return { ...tries[0]!, tries: figures };
  const sorted = [...tries].sort((a, b) => (throughput(a) ?? -1) - (throughput(b) ?? -1));
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return { ...median, repeats: tries.map((t) => throughput(t) ?? 0), tries: figures };
}

/** The hand-written part of the current RESULTS.md (from NOTES_MARKER on), or "". */
async function keptNotes(): Promise<string> {
  try {
    const text = await Deno.readTextFile(new URL("./RESULTS.md", import.meta.url));
    const at = text.indexOf(NOTES_MARKER);
    return at < 0 ? "" : text.slice(at);
  } catch {
    return "";
  }
}

async function main(args: string[]): Promise<number> {
  if (args.includes("--fleet")) return await runFleetBench(args);
  if (args.includes("--variants")) return await runVariantsBench(args);
  const flags = parseFlags(args);
  const ctx = await machineContext(flags, args);
  const runs: BenchRun[] = [];
  for (const scenario of flags.scenarios) {
    // sluice, the binary, the lean baseline (and on io_mild the ceiling) back to back, so they
    // see the same machine load.
    const order: WorkerName[] = scenario === "io_mild"
      ? ["sluice", "binary", "lean", "ceiling", "naive", "sqs-consumer"]
      : ["sluice", "binary", "lean", "naive", "sqs-consumer"];
    const chosen = order.filter((w) => flags.workers.includes(w));
    // The full runs last seconds, so load noise moves them most: repeat them and keep the
    // median, in rounds (sluice, binary, lean, ...; again), so drift in the machine's speed
    // over the minutes of a run falls on every worker alike rather than on one worker's block.
    const tries = new Map<WorkerName, BenchRun[]>(chosen.map((w) => [w, []]));
    const repeated = chosen.filter((w) => FULL_RUN.includes(w));
    for (let i = 0; i < flags.repeat; i++) {
      for (const worker of repeated) {
        tries.get(worker)!.push(await runOne(flags, scenario, worker));
      }
    }
    for (const worker of chosen) {
      if (!repeated.includes(worker)) {
        tries.get(worker)!.push(await runOne(flags, scenario, worker));
      }
      runs.push(medianRun(tries.get(worker)!));
    }
  }

  ctx.loadAtEnd = await loadAverage();
  const notes = await keptNotes();
  const markdown = renderMarkdown(ctx, runs, flags.scenarios) +
    (notes === "" ? "" : `\n${notes}`);
  console.log(markdown);
  if (flags.write) {
    const svg = renderSvg(runs, flags.scenarios);
    await Deno.writeTextFile(new URL("./RESULTS.md", import.meta.url), markdown);
    const svgPath = new URL("./throughput.svg", import.meta.url).pathname;
    await Deno.writeTextFile(svgPath, svg);
    // deno fmt formats SVG too: format the file now so `deno fmt --check` stays clean.
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", svgPath] }).output()
      .catch(() => undefined);
    console.error("bench: wrote bench/RESULTS.md and bench/throughput.svg");
  }
  // The bench fails only when sluice itself misbehaved; baselines are expected to be imperfect.
  const sluiceBad = runs.filter((r) =>
    (r.worker === "sluice" || r.worker === "binary" || r.worker === "ceiling") &&
    (r.summary === undefined || r.summary.lost > 0 || r.summary.duplicateSubmissions > 0 ||
      r.summary.wronglyRejected > 0 || throughput(r) === undefined)
  );
  for (const r of sluiceBad) {
    console.error(`bench: sluice run ${r.scenario}/${r.worker} was not clean`);
  }
  return sluiceBad.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
