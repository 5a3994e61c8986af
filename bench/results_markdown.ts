/** Renders bench/RESULTS.md from the collected runs (contract §9). */
import type { Scenario } from "../lab/lab.ts";
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

const WORKER_ORDER: readonly WorkerName[] = ["sluice", "naive", "sqs-consumer", "ceiling"];

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
    `${fixed(s.msgPerSecond, 1)}${drainedBeforeCap(run) ? " ≥" : ""}`,
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
  const lines: string[] = [];
  lines.push("# sluice benchmark results", "");
  lines.push(`- Date: ${ctx.date}`);
  lines.push(`- Command: \`${ctx.command}\``);
  lines.push(
    `- Machine: ${ctx.nproc} CPU (${ctx.cpuModel}), ${ctx.memoryGb.toFixed(1)} GB RAM, ${ctx.os}`,
  );
  lines.push(`- Runtime: ${ctx.runtime}`);
  const sameCount = ctx.baselineMessages === ctx.messages;
  lines.push(
    `- Workload: ${ctx.messages} messages (2% poison, 1% producer duplicates, 1% unknown users, ` +
      `20% on the hottest 1% of users) over ${ctx.users} users, seed ${ctx.seed}, preloaded; ` +
      (sameCount
        ? "every worker gets the same message set; "
        : `each baseline gets ${ctx.baselineMessages} messages from the same seed; `) +
      `each baseline run is capped at ${ctx.baselineSeconds} s after its first receive.`,
  );
  lines.push("");
  lines.push(
    "Everything (fauxqs, the enrichment and validator simulators, the worker) runs on this one",
    "machine over 127.0.0.1, so the figures compare workers with each other; they are not a",
    "prediction for AWS. On a machine with few cores the lab itself competes with the worker.",
    "",
  );
  lines.push("## How to read it", "");
  lines.push(
    "- msg/s is the lab's figure: messages settled (valid messages accepted, poison bodies",
    "  dead-lettered) ÷ seconds from the worker's first receive to the end of the run.",
    "- sluice and the ceiling run process the whole queue: the run ends when every valid message is",
    "  accepted and every poison body is in the DLQ.",
    "- The baselines are capped by time instead: they are one to two orders of magnitude slower,",
    "  and they leave poison bodies for the redrive policy, which needs three receives 30 s apart,",
    "  so a run to completion would measure the visibility timeout rather than the worker. The",
    "  bench stops a baseline (SIGTERM) the given number of seconds after its first receive, and",
    '  its msg/s is what the validator accepted in that window. Such rows are marked "(cap)";',
    "  their request figures are per message handled, and their lost column counts only valid",
    "  messages that went to the DLQ (the messages the cap left in the queue are not losses).",
    '  "(cap, drained)" and "≥" mark a baseline that emptied the queue before the cap: its idle',
    "  tail counts, so its msg/s is a lower bound (rerun with more --baseline-messages).",
    "- Latency is receive-to-accept: a message's first ReceiveMessage (seen by the lab's SQS",
    "  proxy) to the validator's first 2xx for it, valid messages only.",
    "- SQS req/msg counts every SQS call through the proxy (receive, delete, visibility, send);",
    "  enrich req/msg counts HTTP calls to the enrichment API, ids/msg the user ids asked for.",
    "- Neither baseline deduplicates, so they submit the lab's producer duplicates twice (dup",
    "  submissions); neither retries in process, so a failed message waits out its 30 s",
    "  visibility timeout and after three failed receives goes to the DLQ (lost).",
    "- sluice ×: sluice's msg/s ÷ that baseline's msg/s in the same scenario.",
    "",
  );

  const ceiling = find(runs, "io_mild", "ceiling");
  for (const scenario of scenarios) {
    const sluiceRate = throughput(find(runs, scenario, "sluice"));
    lines.push(`## ${scenario}`, "");
    lines.push(
      "| worker | accepted/valid | msg/s | p50 ms | p99 ms | SQS req/msg | enrich req/msg | enrich ids/msg | peak RSS MB | lost | dup submissions | wrongly rejected | sluice × |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const worker of WORKER_ORDER) {
      const run = find(runs, scenario, worker);
      if (run !== undefined) lines.push(row(run, sluiceRate));
    }
    lines.push("");
    const ceilingRate = throughput(ceiling);
    if (scenario === "io_mild" && ceilingRate !== undefined && ceilingRate > 0) {
      const pct = sluiceRate === undefined
        ? "–"
        : `${(100 * sluiceRate / ceilingRate).toFixed(0)}%`;
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
  }
  lines.push("![msg/s per scenario and worker](throughput.svg)", "");
  return lines.join("\n");
}

function isCapConsequence(problem: string): boolean {
  return problem.startsWith("interrupted") ||
    / valid messages were never accepted$/.test(problem) ||
    / messages left in the queue$/.test(problem);
}
