/**
 * The efficiency part of bench/RESULTS.md: steady msg/s, CPU per message, peak RSS,
 * and for brownout the drain time and the enrichment calls inside the brownout windows, per
 * worker that runs the whole queue, as medians over the repetitions; then the issue's
 * "Done when" targets, checked against the lean baseline of the same bench.
 */
import type { Scenario } from "../lab/lab.ts";
import {
  type BenchRun,
  type Efficiency,
  efficiencyOf,
  find,
  median,
  WORKER_LABEL,
  type WorkerName,
} from "./bench_run.ts";

const FULL_RUN_ORDER: readonly WorkerName[] = ["sluice", "binary", "lean", "ceiling"];

/** Every repetition's figures of a run (one entry when it was not repeated). */
function triesOf(run: BenchRun): Efficiency[] {
  if (run.tries !== undefined) return run.tries;
  const e = efficiencyOf(run);
  return e === undefined ? [] : [e];
}

/** The median of one figure over a run's repetitions; NaN without figures. */
export function medianOf(run: BenchRun | undefined, key: keyof Efficiency): number {
  return run === undefined ? Number.NaN : median(triesOf(run).map((e) => e[key]));
}

/** "3250 (3100, 3250, 3400)": the median, then every repetition when there were several. */
function cell(run: BenchRun, key: keyof Efficiency, digits: number): string {
  const values = triesOf(run).map((e) => e[key]);
  if (values.length === 0) return "–";
  const m = median(values).toFixed(digits);
  return values.length === 1 ? m : `${m} (${values.map((v) => v.toFixed(digits)).join(", ")})`;
}

function table(runs: BenchRun[], scenario: Scenario): string[] {
  const brownout = scenario === "brownout" || scenario === "outage";
  const outage = scenario === "outage";
  const lines = [
    `### ${scenario}`,
    "",
    "| worker | steady msg/s | CPU ms/msg | peak RSS MB" +
    (brownout ? " | drain s | calls in windows" + (outage ? " | recovery ms |" : " |") : " |"),
    "| --- | ---: | ---: | ---:" +
    (brownout ? " | ---: | ---:" + (outage ? " | ---: |" : " |") : " |"),
  ];
  for (const worker of FULL_RUN_ORDER) {
    const run = find(runs, scenario, worker);
    if (run === undefined) continue;
    const cells = [
      WORKER_LABEL[worker],
      cell(run, "steadyMsgPerSecond", 0),
      cell(run, "cpuMsPerMessage", 3),
      cell(run, "peakRssMb", 0),
    ];
    if (brownout) cells.push(cell(run, "drainSeconds", 1), cell(run, "brownoutCalls", 0));
    if (outage) cells.push(cell(run, "recoveryMs", 0));
    lines.push(`| ${cells.join(" | ")} |`);
  }
  lines.push("");
  return lines;
}

function verdict(ok: boolean): string {
  return ok ? "met" : "NOT met";
}

/** The targets for one scenario, sluice (and the binary) against the lean baseline. */
export function targetLines(runs: BenchRun[], scenario: Scenario): string[] {
  const lean = find(runs, scenario, "lean");
  const out: string[] = [];
  for (const worker of ["sluice", "binary"] as const) {
    const run = find(runs, scenario, worker);
    if (run === undefined || lean === undefined) continue;
    const who = `${scenario}, ${WORKER_LABEL[worker]}`;
    if (scenario === "brownout") {
      const drain = medianOf(run, "drainSeconds") / medianOf(lean, "drainSeconds");
      const calls = medianOf(run, "brownoutCalls") / medianOf(lean, "brownoutCalls");
      out.push(
        `- ${who}: drain ${drain.toFixed(2)}× the lean baseline's (target ≤ 1.05: ` +
          `${verdict(drain <= 1.05)}), calls in the windows ${(100 * calls).toFixed(0)} % of its ` +
          `(target ≤ 15 %: ${verdict(calls <= 0.15)})`,
      );
    } else if (scenario === "outage") {
      // The outage lasts 10 s (lab/scenario.ts); one worker.
      const perSecond = medianOf(run, "brownoutCalls") / 10;
      const recovery = medianOf(run, "recoveryMs");
      out.push(
        `- ${who}: ${perSecond.toFixed(1)} calls per second during the outage (target ≤ 1: ` +
          `${verdict(perSecond <= 1)}), first success ${recovery.toFixed(0)} ms after it ended ` +
          `(target ≤ 2000: ${verdict(recovery <= 2000)}); the lean baseline: ` +
          `${(medianOf(lean, "brownoutCalls") / 10).toFixed(1)} calls per second`,
      );
    } else {
      const rate = medianOf(run, "steadyMsgPerSecond") / medianOf(lean, "steadyMsgPerSecond");
      const cpu = medianOf(run, "cpuMsPerMessage") / medianOf(lean, "cpuMsPerMessage");
      out.push(
        `- ${who}: steady msg/s ${rate.toFixed(2)}× the lean baseline's (target ≥ 1: ` +
          `${verdict(rate >= 1)}), CPU per message ${cpu.toFixed(2)}× (target ≤ 0.8: ` +
          `${verdict(cpu <= 0.8)})`,
      );
    }
    const rss = Math.max(...triesOf(run).map((e) => e.peakRssMb));
    out.push(`- ${who}: peak RSS ${rss.toFixed(0)} MB (target ≤ 150: ${verdict(rss <= 150)})`);
  }
  return out;
}

/** The "Efficiency" section: one table per scenario, then the targets. */
export function efficiencySection(runs: BenchRun[], scenarios: Scenario[]): string[] {
  const lines = ["## Efficiency against the lean baseline", ""];
  for (const scenario of scenarios) {
    if (FULL_RUN_ORDER.some((w) => find(runs, scenario, w) !== undefined)) {
      lines.push(...table(runs, scenario));
    }
  }
  const targets = scenarios.flatMap((s) => targetLines(runs, s));
  if (targets.length > 0) lines.push("Targets (medians):", "", ...targets, "");
  return lines;
}
