/**
 * `deno task bench --fleet` (issue 14): 1, 2 and 4 sluice workers on one lab
 * queue, io_heavy, MAX_IN_FLIGHT=100 per worker (so one worker is not already at
 * the machine's limit), without and with the idempotency table (dynalite).
 * Reports the scaling efficiency (rate of N workers ÷ N × rate of one) and the
 * table's cost per message: requests by action and the added p50 latency.
 * Writes (replaces) the "Fleet" section of bench/RESULTS.md.
 *
 * The added latency is measured apart, at a fixed rate well below saturation
 * (2 workers, --rate msg/s), so it is the table's round trips, not queueing.
 *
 * Flags: --messages N (default 4000), --counts 1,2,4, --rate R (default 100),
 * --no-write.
 */
import { type LabSummary, runLab } from "../lab/lab.ts";

interface FleetRun {
  workers: number;
  table: boolean;
  /** msg/s the generator sends at; 0 = preloaded (a throughput run) */
  rate?: number;
  summary: LabSummary;
}

const HEADING = "## Fleet: several workers on one queue";

export async function runFleetBench(args: string[]): Promise<number> {
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const messages = Number(value("--messages") ?? 4000);
  const counts = (value("--counts") ?? "1,2,4").split(",").map(Number);
  if (!Number.isSafeInteger(messages) || messages <= 0 || counts.some((n) => !(n >= 1))) {
    console.error("bench: --fleet needs --messages N and --counts a,b,c of positive integers");
    return 2;
  }
  const rate = Number(value("--rate") ?? 100);
  const runs: FleetRun[] = [];
  const plan = [
    ...[false, true].flatMap((table) => counts.map((workers) => ({ workers, table, rate: 0 }))),
    ...[false, true].map((table) => ({ workers: 2, table, rate })),
  ];
  for (const { workers, table, rate } of plan) {
    {
      console.error(
        `bench: fleet ${workers} worker(s)${table ? " with the table" : ""}${
          rate ? ` at ${rate} msg/s` : ""
        } ...`,
      );
      const summary = await runLab({
        scenario: "io_heavy",
        messages: rate ? Math.min(messages, rate * 10) : messages,
        rate,
        users: 2000,
        seed: 1,
        poisonShare: 0.02,
        duplicateShare: 0.01,
        unknownShare: 0.01,
        hotShare: 0.2,
        workers,
        table,
        workerEnv: { MAX_IN_FLIGHT: "100" },
      });
      runs.push({ workers, table, rate, summary });
      console.error(
        `bench:   ${summary.msgPerSecond} msg/s, p50 ${summary.p50Ms} ms, ${
          summary.ok ? "OK" : summary.problems.join("; ")
        }`,
      );
    }
  }
  const section = renderFleet(runs, messages, await machine());
  console.log(section);
  if (!args.includes("--no-write")) {
    const url = new URL("./RESULTS.md", import.meta.url);
    const current = await Deno.readTextFile(url).catch(() => "");
    await Deno.writeTextFile(url, replaceSection(current, section));
    console.error("bench: wrote the Fleet section of bench/RESULTS.md");
  }
  // Without the table, producer duplicates on two workers are expected: that is the contrast.
  return runs.every((r) => r.summary.ok || (!r.table && r.workers > 1)) ? 0 : 1;
}

/** The markdown section; pure, so its arithmetic is testable. */
export function renderFleet(
  allRuns: readonly FleetRun[],
  messages: number,
  host: string,
): string {
  const runs = allRuns.filter((r) => !r.rate);
  const paced = allRuns.filter((r) => r.rate);
  const one = (table: boolean) => runs.find((r) => r.workers === 1 && r.table === table);
  const lines = [
    HEADING,
    "",
    `\`deno task bench --fleet\`: io_heavy, ${messages} messages, MAX_IN_FLIGHT=100 per worker, ` +
    `every worker a separate process on this machine (${host}), with the lab's services. ` +
    `Efficiency = msg/s of N workers ÷ (N × msg/s of one). The table is dynalite on loopback: ` +
    `its latency is the lab's, not DynamoDB's (single-digit ms in-region).`,
    "",
    "| workers | table | msg/s | efficiency | p50 ms | p99 ms | per worker msg/s | dup submissions | DynamoDB requests/msg | result |",
    "| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |",
  ];
  for (const r of runs) {
    const base = one(r.table);
    const efficiency = base && base.summary.msgPerSecond > 0
      ? (r.summary.msgPerSecond / (r.workers * base.summary.msgPerSecond)).toFixed(2)
      : "—";
    const perWorker = (r.summary.workers ?? []).map((w) => w.msgPerSecond).join(" / ");
    lines.push(
      `| ${r.workers} | ${
        r.table ? "yes" : "no"
      } | ${r.summary.msgPerSecond} | ${efficiency} | ${r.summary.p50Ms} | ${r.summary.p99Ms} | ${perWorker} | ${r.summary.duplicateSubmissions} | ${
        r.table ? requestsPerMessage(r.summary) : "—"
      } | ${
        r.summary.ok ? "OK" : !r.table && r.workers > 1 ? "duplicates (no shared dedupe)" : "FAILED"
      } |`,
    );
  }
  lines.push("", "Cost of the table per valid message, with vs without:", "");
  for (const r of [...paced, ...runs].filter((x) => x.table)) {
    const group = r.rate ? paced : runs;
    const plain = group.find((x) => !x.table && x.workers === r.workers);
    if (!plain) continue;
    const added = Math.round((r.summary.p50Ms - plain.summary.p50Ms) * 10) / 10;
    lines.push(
      `- ${r.workers} worker(s)${
        r.rate ? ` at ${r.rate} msg/s (below saturation: the added latency)` : ", saturated"
      }: ${requestsPerMessage(r.summary)} requests per message; ` +
        `p50 ${plain.summary.p50Ms} → ${r.summary.p50Ms} ms (${
          added >= 0 ? "+" : ""
        }${added} ms); ` +
        `msg/s ${plain.summary.msgPerSecond} → ${r.summary.msgPerSecond}.`,
    );
  }
  lines.push(
    "",
    "Capacity: an accepted message is a PutItem and an UpdateItem (2 WCU); a duplicate a refused " +
      "PutItem and a GetItem (1 RCU, plus the refused write's 1 WCU). See docs/scaling.md.",
  );
  return lines.join("\n") + "\n";
}

function requestsPerMessage(s: LabSummary): string {
  const requests = s.tableRequests ?? {};
  const per = (n: number) => Math.round((n / Math.max(1, s.valid)) * 1000) / 1000;
  const total = Object.entries(requests)
    .filter(([action]) => action !== "CreateTable" && action !== "DescribeTable")
    .reduce((sum, [, n]) => sum + n, 0);
  const parts = ["PutItem", "GetItem", "UpdateItem", "DeleteItem"]
    .filter((a) => requests[a])
    .map((a) => `${a} ${per(requests[a]!)}`);
  return `${per(total)} (${parts.join(", ")})`;
}

/** Replaces the Fleet section (up to the next "## ") or appends it. */
export function replaceSection(markdown: string, section: string): string {
  const start = markdown.indexOf(HEADING);
  if (start < 0) return `${markdown.trimEnd()}\n\n${section}`;
  const next = markdown.indexOf("\n## ", start + HEADING.length);
  const end = next < 0 ? markdown.length : next + 1;
  return `${markdown.slice(0, start)}${section}${next < 0 ? "" : "\n"}${markdown.slice(end)}`;
}

async function machine(): Promise<string> {
  const cores = navigator.hardwareConcurrency;
  const load = await Deno.readTextFile("/proc/loadavg").then((t) => t.split(" ")[0]).catch(() =>
    "?"
  );
  return `${cores} cores, load ${load} at the start, ${new Date().toISOString().slice(0, 16)}Z`;
}
