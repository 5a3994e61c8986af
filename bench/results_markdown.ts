/** Renders bench/RESULTS.md from the collected runs (contract §9). */
import type { Scenario } from "../lab/lab.ts";
import { efficiencySection } from "./efficiency_markdown.ts";
import {
  type BenchContext,
  type BenchRun,
  drainedBeforeCap,
  find,
  perMessage,
  ratio,
  throughput,
  validDeadLettered,
  wasCapped,
  WORKER_LABEL,
  type WorkerName,
} from "./bench_run.ts";

const WORKER_ORDER: readonly WorkerName[] = [
  "sluice",
  "binary",
  "lean",
  "naive",
  "sqs-consumer",
  "ceiling",
];

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(digits);
}

function row(run: BenchRun, sluiceRate: number | undefined): string {
  const s = run.summary;
  const label = WORKER_LABEL[run.worker];
  if (s === undefined) {
    const why = (run.error ?? "no summary").replaceAll("|", "/").slice(0, 120);
    return `| ${label} | failed: ${why} | | | | | | | | | | | |`;
  }
  const capped = wasCapped(run);
  const per = perMessage(run);
  const note = capped ? (drainedBeforeCap(run) ? " (cap, drained)" : " (cap)") : "";
  const isBaseline = run.worker === "naive" || run.worker === "sqs-consumer";
  return "| " + [
    label,
    `${s.accepted}/${s.valid}${note}`,
    `${fixed(s.msgPerSecond, 1)}${drainedBeforeCap(run) ? " ≥" : ""}` +
    (run.repeats ? ` (median of ${run.repeats.map((r) => r.toFixed(0)).join(", ")})` : ""),
    fixed(s.p50Ms, 0),
    fixed(s.p99Ms, 0),
    fixed(per?.sqsRequests, 3),
    fixed(per?.enrichRequests, 3),
    fixed(per?.enrichIds, 3),
    fixed(s.peakRssMb, 0),
    // A capped run's unreached messages are not losses: count only valid ones dead-lettered.
    capped ? String(validDeadLettered(run) ?? "–") : String(s.lost),
    String(s.duplicateSubmissions),
    String(s.wronglyRejected),
    isBaseline ? ratio(sluiceRate, s.msgPerSecond) : "",
  ].join(" | ") + " |";
}

/** The Markdown report. */
export function renderMarkdown(ctx: BenchContext, runs: BenchRun[], scenarios: Scenario[]): string {
  const lines = [...header(ctx), ...HOW_TO_READ, ...summaryLines(runs, scenarios), ""];
  lines.push(...efficiencySection(runs, scenarios));
  for (const scenario of scenarios) lines.push(...scenarioSection(runs, scenario));
  lines.push("![msg/s per scenario and worker](throughput.svg)", "");
  return lines.join("\n");
}

function header(ctx: BenchContext): string[] {
  const sameCount = ctx.baselineMessages === ctx.messages;
  return [
    "# sluice benchmark results",
    "",
    `- Date: ${ctx.date}`,
    `- Command: \`${ctx.command}\``,
    `- Machine: ${ctx.nproc} CPU (${ctx.cpuModel}), ${ctx.memoryGb.toFixed(1)} GB RAM, ${ctx.os}`,
    `- Runtime: ${ctx.runtime}`,
    `- Load average (1/5/15 min): ${ctx.loadAtStart} at the start, ${ctx.loadAtEnd} at the end`,
    `- Workload: ${ctx.messages} messages (2% poison, 1% producer duplicates, 1% unknown users, ` +
    `20% on the hottest 1% of users) over ${ctx.users} users, seed ${ctx.seed}, preloaded; ` +
    (sameCount
      ? "every worker gets the same message set; "
      : `each capped baseline gets ${ctx.baselineMessages} messages from the same seed; `) +
    (ctx.brownoutMessages === ctx.messages
      ? ""
      : `brownout's full runs get ${ctx.brownoutMessages} messages; `) +
    `each naive/sqs-consumer run is capped at ${ctx.baselineSeconds} s after its first receive` +
    (ctx.repeat > 1
      ? `; sluice, the binary, the lean baseline and the ceiling ran ${ctx.repeat} times each, ` +
        "in rounds of one each (msg/s: the median run; efficiency figures: the median of each)."
      : "."),
    "",
    "Everything (fauxqs, the enrichment and validator simulators, the worker) runs on this one",
    "machine over 127.0.0.1, so the figures compare workers with each other; they are not a",
    "prediction for AWS. On a machine with few cores the lab itself competes with the worker.",
    "",
  ];
}

const HOW_TO_READ: readonly string[] = [
  "## How to read it",
  "",
  "- msg/s is the lab's figure: messages settled (valid messages accepted, poison bodies",
  "  dead-lettered) ÷ seconds from the worker's first receive to the end of the run.",
  "- steady msg/s leaves out warm-up and tail: the acceptances between the 10th and the 90th",
  "  percentile of the validator's acceptance times ÷ the time between those two.",
  "- CPU ms/msg: user + system CPU of the worker's whole process tree (/proc/<pid>/stat of the",
  "  process the lab started and every descendant), from its first receive to the end of the",
  "  run, ÷ messages settled; startup and the drain after SIGTERM are left out.",
  "- peak RSS: the sum of the tree's VmHWM just before SIGTERM (per process peaks; an upper",
  "  bound of the tree's).",
  "- sluice, the binary, the lean baseline and the ceiling run process the whole queue: the run",
  "  ends when every valid message is accepted and every poison body is in the DLQ.",
  "- The naive and sqs-consumer baselines are capped by time instead: they are one to two orders",
  "  of magnitude slower, and they leave poison bodies for the redrive policy, which needs three",
  "  receives 30 s apart. The bench stops them (SIGTERM) the given number of seconds after their",
  "  first receive; their msg/s is what the validator accepted in that window. Such rows are",
  '  marked "(cap)"; their request figures are per message handled, and their lost column counts',
  '  only valid messages that went to the DLQ. "(cap, drained)" and "≥" mark a baseline that',
  "  emptied the queue before the cap: its idle tail counts, so its msg/s is a lower bound.",
  "- Latency is receive-to-accept: a message's first ReceiveMessage (seen by the lab's SQS",
  "  proxy) to the validator's first 2xx for it, valid messages only.",
  "- SQS req/msg counts every SQS call through the proxy (receive, delete, visibility, send);",
  "  enrich req/msg counts HTTP calls to the enrichment API, ids/msg the user ids asked for.",
  "- The baselines do not deduplicate, so they submit the lab's producer duplicates twice (dup",
  "  submissions); naive and sqs-consumer do not retry in process either.",
  "- brownout: from the first enrichment call, the first 3 s of every 12 s answer 60 % 503 with",
  '  `Retry-After: 2` (the rest slowly); "calls in windows" counts the enrichment calls that',
  "  arrived inside those windows, drain s is first receive to the last outcome.",
  "- sluice ×: sluice's msg/s ÷ that baseline's msg/s in the same scenario.",
  "",
];

const TABLE_HEAD = [
  "| worker | accepted/valid | msg/s | p50 ms | p99 ms | SQS req/msg | enrich req/msg | enrich ids/msg | peak RSS MB | lost | dup submissions | wrongly rejected | sluice × |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
];

function scenarioSection(runs: BenchRun[], scenario: Scenario): string[] {
  const sluiceRate = throughput(find(runs, scenario, "sluice"));
  const lines = [`## ${scenario}`, "", ...TABLE_HEAD];
  for (const worker of WORKER_ORDER) {
    const run = find(runs, scenario, worker);
    if (run !== undefined) lines.push(row(run, sluiceRate));
  }
  lines.push("");
  const ceilingRate = throughput(find(runs, "io_mild", "ceiling"));
  if (scenario === "io_mild" && ceilingRate !== undefined && ceilingRate > 0) {
    const pct = sluiceRate === undefined ? "–" : `${(100 * sluiceRate / ceilingRate).toFixed(0)}%`;
    lines.push(`sluice reaches ${pct} of the lab's ceiling on io_mild.`, "");
  }
  const problems = runs
    .filter((r) => r.scenario === scenario && r.summary !== undefined)
    .flatMap((r) =>
      r.summary!.problems
        // The cap's own consequences are explained above, not problems.
        .filter((p) => !(wasCapped(r) && isCapConsequence(p)))
        .map((p) => `- ${WORKER_LABEL[r.worker]}: ${p}`)
    );
  if (problems.length > 0) lines.push("Problems the lab reported:", "", ...problems, "");
  return lines;
}

function isCapConsequence(problem: string): boolean {
  return problem.startsWith("interrupted") ||
    / valid messages were never accepted$/.test(problem) ||
    / messages left in the queue$/.test(problem);
}

/** The headline figures, as targets are set. */
function summaryLines(runs: BenchRun[], scenarios: Scenario[]): string[] {
  const out = ["## Summary", ""];
  for (const scenario of scenarios) {
    const sluice = find(runs, scenario, "sluice");
    const rate = throughput(sluice);
    if (rate === undefined) {
      out.push(`- ${scenario}: sluice produced no result`);
      continue;
    }
    const s = sluice!.summary!;
    out.push(
      `- ${scenario}: sluice ${rate.toFixed(0)} msg/s = ` +
        `${ratio(rate, throughput(find(runs, scenario, "naive")))} naive, ` +
        `${ratio(rate, throughput(find(runs, scenario, "sqs-consumer")))} sqs-consumer; ` +
        `lost ${s.lost}, duplicate submissions ${s.duplicateSubmissions}, ` +
        `wrongly rejected ${s.wronglyRejected}`,
    );
  }
  const mild = find(runs, "io_mild", "sluice")?.summary;
  const ceilingRate = throughput(find(runs, "io_mild", "ceiling"));
  if (mild !== undefined) {
    if (ceilingRate !== undefined && ceilingRate > 0) {
      out.push(
        `- io_mild: ${(100 * mild.msgPerSecond / ceilingRate).toFixed(0)}% of the lab's ceiling ` +
          `(${ceilingRate.toFixed(0)} msg/s with instant downstreams)`,
      );
    }
    out.push(
      `- io_mild, ${mild.messages} messages: ${mild.sqsRequestsPerMessage.toFixed(3)} SQS ` +
        `requests/msg, ${mild.enrichRequestsPerMessage.toFixed(3)} enrichment requests/msg`,
    );
  }
  const rss = runs
    .filter((r) => r.worker === "sluice" && r.summary !== undefined)
    .map((r) => r.summary!.peakRssMb);
  if (rss.length > 0) {
    out.push(`- sluice peak RSS: ${Math.max(...rss).toFixed(0)} MB (highest run)`);
  }
  return out;
}
