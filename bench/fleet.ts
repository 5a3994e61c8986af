/**
 * `deno task bench --fleet`: 1, 2 and 4 sluice workers on one lab
 * queue, io_heavy, MAX_IN_FLIGHT=100 per worker, without and with the
 * idempotency table (dynalite). Reports the scaling efficiency (rate of N
 * workers ÷ N × rate of one) and the table's cost per message: requests by
 * action and the added p50 latency. Writes (replaces) the "Fleet" section of
 * bench/RESULTS.md.
 *
 * The validator answers with a remote service's latency (--validator-ms): with
 * the lab's 1–4 ms one worker at 100 in flight already runs as fast as this
 * machine's CPU allows, and a second worker only shares the same cores. With
 * a remote latency one worker is bound by its own caps (in flight ÷ latency),
 * as the issue means, and a few more still fit on the machine. The saturated
 * runs (1–4 ms) are kept apart, for 1 and 2 workers, to show the machine's limit.
 *
 * The added latency is measured apart, at a fixed rate well below saturation
 * (2 workers, --rate msg/s), so it is the table's round trips, not queueing.
 *
 * Flags: --messages N (default 4000), --counts 1,2,4, --rate R (default 100),
 * --validator-ms LO,HI (default 300,400), --no-saturated (skip the 1–4 ms runs),
 * --no-write.
 */
import { BENCH_WORKLOAD } from "./workload.ts";
import { type LabSummary, runLab } from "../lab/lab.ts";

/** One lab run of the bench and what it measured. */
export interface FleetRun {
  workers: number;
  table: boolean;
  /** msg/s the generator sends at; 0 = preloaded (a throughput run) */
  rate: number;
  /** the validator's latency range, ms */
  validatorMs: [number, number];
  summary: LabSummary;
}

/** What the flags ask for. */
export interface FleetPlanOptions {
  messages: number;
  counts: number[];
  rate: number;
  validatorMs: [number, number];
  saturated: boolean;
}

const HEADING = "## Fleet: several workers on one queue";
/** The lab's own validator latency: a service next door, where one worker meets the CPU limit. */
export const NEXT_DOOR_MS: [number, number] = [1, 4];
const MAX_IN_FLIGHT = 100;
/** sluice's VALIDATOR_CONCURRENCY default: the cap on submissions in flight per worker. */
const VALIDATOR_CONCURRENCY = 64;

/** Parses the bench's fleet flags; an error message for a bad value. */
export function parseFleetFlags(args: readonly string[]): FleetPlanOptions | string {
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const messages = Number(value("--messages") ?? 4000);
  const counts = (value("--counts") ?? "1,2,4").split(",").map(Number);
  if (!Number.isSafeInteger(messages) || messages <= 0 || counts.some((n) => !(n >= 1))) {
    return "bench: --fleet needs --messages N and --counts a,b,c of positive integers";
  }
  const rate = Number(value("--rate") ?? 100);
  if (!(rate > 0)) {
    return `bench: Cannot parse --rate: received "${value("--rate")}", expected a number > 0`;
  }
  const raw = value("--validator-ms") ?? "300,400";
  const range = raw.split(",").map(Number);
  if (
    range.length !== 2 || !range.every((n) => Number.isSafeInteger(n) && n >= 0) ||
    range[0]! > range[1]!
  ) {
    return `bench: Cannot parse --validator-ms: received "${raw}", expected LO,HI integers 0 <= LO <= HI (ms)`;
  }
  return {
    messages,
    counts,
    rate,
    validatorMs: [range[0]!, range[1]!],
    saturated: !args.includes("--no-saturated"),
  };
}

/** The runs, in order: throughput without then with the table, the paced pair, the saturated ones. */
export function fleetPlan(
  o: FleetPlanOptions,
): Array<Pick<FleetRun, "workers" | "table" | "rate" | "validatorMs">> {
  const both = [false, true];
  return [
    ...both.flatMap((table) =>
      o.counts.map((workers) => ({ workers, table, rate: 0, validatorMs: o.validatorMs }))
    ),
    ...both.map((table) => ({ workers: 2, table, rate: o.rate, validatorMs: o.validatorMs })),
    ...(o.saturated
      ? both.flatMap((table) =>
        o.counts.filter((n) => n <= 2).map((workers) => ({
          workers,
          table,
          rate: 0,
          validatorMs: NEXT_DOOR_MS,
        }))
      )
      : []),
  ];
}

export async function runFleetBench(args: string[]): Promise<number> {
  const parsed = parseFleetFlags(args);
  if (typeof parsed === "string") {
    console.error(parsed);
    return 2;
  }
  const flags = args.filter((a) => a !== "--fleet").join(" ");
  const host = await machine();
  const runs: FleetRun[] = [];
  for (const { workers, table, rate, validatorMs } of fleetPlan(parsed)) {
    console.error(
      `bench: fleet ${workers} worker(s)${table ? " with the table" : ""}${
        rate ? ` at ${rate} msg/s` : ""
      }, validator ${validatorMs.join("–")} ms ...`,
    );
    const summary = await runLab({
      scenario: "io_heavy",
      messages: rate ? Math.min(parsed.messages, rate * 10) : parsed.messages,
      rate,
      ...BENCH_WORKLOAD,
      workers,
      table,
      workerEnv: { MAX_IN_FLIGHT: String(MAX_IN_FLIGHT) },
      validatorLatencyMs: validatorMs,
    });
    runs.push({ workers, table, rate, validatorMs, summary });
    console.error(
      `bench:   ${summary.msgPerSecond} msg/s, p50 ${summary.p50Ms} ms, ${
        summary.ok ? "OK" : summary.problems.join("; ")
      }`,
    );
  }
  const section = renderFleet(
    runs,
    parsed,
    `${host}: \`deno task bench --fleet${flags ? ` ${flags}` : ""}\``,
  );
  console.log(section);
  if (!args.includes("--no-write")) await writeSection(section, HEADING, "Fleet");
  // Without the table, producer duplicates on two workers are expected: that is the contrast.
  return runs.every((r) => r.summary.ok || (!r.table && r.workers > 1)) ? 0 : 1;
}

/** The markdown section; pure, so its arithmetic is testable. `host` says the machine, load, date and flags. */
export function renderFleet(
  allRuns: readonly FleetRun[],
  o: Pick<FleetPlanOptions, "messages" | "validatorMs">,
  host: string,
): string {
  const remote = (r: FleetRun) => sameRange(r.validatorMs, o.validatorMs);
  const runs = allRuns.filter((r) => !r.rate && remote(r));
  const paced = allRuns.filter((r) => r.rate);
  const saturated = allRuns.filter((r) => !r.rate && !remote(r));
  const [lo, hi] = o.validatorMs;
  const bound = Math.round(VALIDATOR_CONCURRENCY / ((lo + hi) / 2000));
  const lines = [
    HEADING,
    "",
    `${host}.`,
    "",
    `io_heavy, ${o.messages} messages, MAX_IN_FLIGHT=${MAX_IN_FLIGHT} per worker, every worker a ` +
    `separate process on this machine, with the lab's services. The validator answers in ${lo}–${hi} ms, ` +
    `a remote service's latency: with the lab's own 1–4 ms one worker at ${MAX_IN_FLIGHT} in flight ` +
    `already runs as fast as the two cores allow, and a second worker only shares them` +
    `${saturated.length ? " (the last table)" : ""}. The issue asks for one worker below the ` +
    `machine's limit, so here one worker is bound by its own caps: at most ` +
    `VALIDATOR_CONCURRENCY=${VALIDATOR_CONCURRENCY} of its ${MAX_IN_FLIGHT} messages at the validator ` +
    `÷ ${
      (lo + hi) / 2
    } ms ≈ ${bound} msg/s (less in a run this short: the adaptive limit starts at ` +
    `${VALIDATOR_CONCURRENCY / 2} and grows by one per round trip). ` +
    `Efficiency = msg/s of N workers ÷ (N × msg/s of one). The table is dynalite on loopback: ` +
    `its latency is the lab's, not DynamoDB's (single-digit ms in-region).`,
    "",
    ...fleetTable(runs),
  ];
  lines.push("", "Cost of the table per valid message, with vs without:", "");
  for (const r of [...paced, ...runs, ...saturated].filter((x) => x.table)) {
    const group = r.rate ? paced : remote(r) ? runs : saturated;
    const plain = group.find((x) => !x.table && x.workers === r.workers);
    if (!plain) continue;
    const added = Math.round((r.summary.p50Ms - plain.summary.p50Ms) * 10) / 10;
    const how = r.rate
      ? ` at ${r.rate} msg/s (below saturation: the added latency)`
      : remote(r)
      ? ", as fast as they go"
      : `, validator ${r.validatorMs.join("–")} ms (CPU-bound)`;
    lines.push(
      `- ${r.workers} worker(s)${how}: ${requestsPerMessage(r.summary)} requests per message; ` +
        `p50 ${plain.summary.p50Ms} → ${r.summary.p50Ms} ms (${
          added >= 0 ? "+" : ""
        }${added} ms); ` +
        `msg/s ${plain.summary.msgPerSecond} → ${r.summary.msgPerSecond}.`,
    );
  }
  if (saturated.length) {
    lines.push(
      "",
      `With the validator next door (${
        saturated[0]!.validatorMs.join("–")
      } ms), one worker is already at the machine's limit (the CPU, shared with the lab and ` +
        "dynalite), so a second one adds little: this is not scaling, it is the cores.",
      "",
      ...fleetTable(saturated),
    );
  }
  lines.push(
    "",
    "Capacity: an accepted message is a PutItem and an UpdateItem (2 WCU); a duplicate a refused " +
      "PutItem and a GetItem (1 RCU, plus the refused write's 1 WCU). See docs/scaling.md.",
  );
  return lines.join("\n") + "\n";
}

/** One markdown table of throughput runs; efficiency against the 1-worker run of the same kind. */
function fleetTable(runs: readonly FleetRun[]): string[] {
  const one = (table: boolean) => runs.find((r) => r.workers === 1 && r.table === table);
  const lines = [
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
  return lines;
}

function sameRange(a: readonly number[], b: readonly number[]): boolean {
  return a[0] === b[0] && a[1] === b[1];
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

/** Puts `section` under `heading` in bench/RESULTS.md (`name` for the line that says so). */
export async function writeSection(section: string, heading: string, name: string): Promise<void> {
  const url = new URL("./RESULTS.md", import.meta.url);
  const current = await Deno.readTextFile(url).catch(() => "# Benchmark results\n");
  await Deno.writeTextFile(url, replaceSection(current, section, heading));
  console.error(`bench: wrote the ${name} section of bench/RESULTS.md`);
}

/** Replaces the section under `heading` (up to the next "## ") or appends it. */
export function replaceSection(markdown: string, section: string, heading = HEADING): string {
  const start = markdown.indexOf(heading);
  if (start < 0) return `${markdown.trimEnd()}\n\n${section}`;
  const next = markdown.indexOf("\n## ", start + heading.length);
  const end = next < 0 ? markdown.length : next + 1;
  return `${markdown.slice(0, start)}${section}${next < 0 ? "" : "\n"}${markdown.slice(end)}`;
}

async function machine(): Promise<string> {
  const cores = navigator.hardwareConcurrency;
  const load = await Deno.readTextFile("/proc/loadavg").then((t) => t.split(" ")[0]).catch(() =>
    "?"
  );
  return `Run ${
    new Date().toISOString().slice(0, 16)
  }Z on ${cores} cores, load ${load} at the start`;
}
