/**
 * `deno task bench --variants a,b`: sluice as `deno task start` on io_mild, plain and with one
 * change at a time (a FIFO queue, an older checkout, …), in rounds so machine drift falls on
 * each alike; medians of each figure, and each variant's ratio to the plain runs of the same
 * rounds. Writes (replaces) the "Variants" section of bench/RESULTS.md.
 *
 * Flags: --variants a,b (see VARIANTS; a variant compared against another brings that one too), --messages N (default 20000), --repeat N (default 3),
 * --before DIR (a checkout whose `deno task start` is the "before" variant), --no-write,
 * --paired (each variant runs at the same time as its base, both workers on one CPU: see
 * runPaired).
 */
import { BENCH_WORKLOAD } from "./workload.ts";
import { type LabOptions, type LabSummary, runLab } from "../lab/lab.ts";
import { writeSection } from "./fleet.ts";
import { runPaired } from "./paired.ts";

/** One change to the plain run. */
export interface Variant {
  name: string;
  /** What it changes, for the report. */
  what: string;
  /** The variant its ratios are taken against, default the plain runs. */
  against?: string;
  options(base: LabOptions, flags: VariantFlags): LabOptions;
}

export interface VariantFlags {
  variants: string[];
  messages: number;
  repeat: number;
  before: string | undefined;
  write: boolean;
  paired: boolean;
}

const START = [Deno.execPath(), "task", "--quiet", "start"];

export const VARIANTS: readonly Variant[] = [
  {
    name: "fifo",
    what: "a FIFO queue, 1,000 message groups",
    options: (base) => ({ ...base, fifo: true, fifoGroups: 1000 }),
  },
  {
    name: "fifo-failing",
    what: "the FIFO queue, its busiest group failing for 30 s; p50/p99 of the other groups",
    against: "fifo",
    options: (base) => ({ ...base, fifo: true, fifoGroups: 1000, failingGroupSeconds: 30 }),
  },
  {
    name: "traced",
    what: "half the messages producer-traced (a traceparent attribute); export off",
    options: (base) => ({ ...base, producerTraced: true }),
  },
  {
    name: "trace",
    what: "the traced messages, their spans exported (OTLP/HTTP protobuf) to the lab's receiver",
    // The same messages without export: what export costs, not what the attributes do.
    against: "traced",
    options: (base) => ({ ...base, trace: true }),
  },
  {
    name: "before",
    what: "the checkout given by --before",
    options: (base, flags) => ({ ...base, workerCwd: flags.before! }),
  },
];

const HEADING = "## Variants: the same load, one change each";

/** Parses the flags; a string is the one-line problem. */
export function parseVariantFlags(args: readonly string[]): VariantFlags | string {
  const flags: VariantFlags = {
    variants: [],
    messages: 20_000,
    repeat: 3,
    before: undefined,
    write: !args.includes("--no-write"),
    paired: args.includes("--paired"),
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = () => args[++i] ?? "";
    if (arg === "--variants") flags.variants = next().split(",").filter((v) => v !== "");
    else if (arg === "--messages") flags.messages = Number(next());
    else if (arg === "--repeat") flags.repeat = Number(next());
    else if (arg === "--before") flags.before = next();
    else if (arg !== "--no-write" && arg !== "--paired") {
      return `unknown flag ${JSON.stringify(arg)} with --variants`;
    }
  }
  const unknown = flags.variants.filter((v) => !VARIANTS.some((x) => x.name === v));
  if (flags.variants.length === 0 || unknown.length > 0) {
    return `--variants: expected some of ${VARIANTS.map((v) => v.name).join(", ")}`;
  }
  if (!(Number.isSafeInteger(flags.messages) && flags.messages > 0)) return "--messages: a count";
  if (!(Number.isSafeInteger(flags.repeat) && flags.repeat > 0)) return "--repeat: a count";
  if (flags.variants.includes("before") && !flags.before) {
    return "the before variant needs --before DIR";
  }
  return flags;
}

export async function runVariantsBench(args: string[]): Promise<number> {
  const flags = parseVariantFlags(args);
  if (typeof flags === "string") {
    console.error(`bench: ${flags}`);
    return 2;
  }
  const base: LabOptions = {
    scenario: "io_mild",
    messages: flags.messages,
    rate: 0,
    ...BENCH_WORKLOAD,
    workerCmd: START,
  };
  if (flags.paired) return await runPaired(flags, base);
  const chosen = VARIANTS.filter((v) =>
    flags.variants.includes(v.name) ||
    flags.variants.some((name) => VARIANTS.find((x) => x.name === name)?.against === v.name)
  );
  const runs = new Map<string, LabSummary[]>([
    ["plain", []],
    ...chosen.map((v) => [v.name, []] as [string, LabSummary[]]),
  ]);
  const started = new Date().toISOString().slice(0, 16);
  for (let round = 1; round <= flags.repeat; round++) {
    for (const [name, list] of runs) {
      const variant = chosen.find((v) => v.name === name);
      const summary = await runLab(variant ? variant.options(base, flags) : base);
      console.error(
        `[round ${round} ${name}] ${summary.steadyMsgPerSecond} msg/s steady, ${summary.cpuMsPerMessage} ms CPU/msg, p99 ${summary.p99Ms} ms${
          summary.ok ? "" : `; ${summary.problems.join("; ")}`
        }`,
      );
      list.push(summary);
    }
  }
  const section = renderVariants(runs, chosen, {
    started,
    messages: flags.messages,
    before: flags.before,
  });
  console.log(section);
  if (flags.write) await writeSection(section, HEADING, "Variants");
  return [...runs.values()].flat().every((s) => s.ok) ? 0 : 1;
}

/** The median of each figure over a variant's runs. */
function medians(list: readonly LabSummary[]) {
  const median = (pick: (s: LabSummary) => number) => {
    const sorted = list.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
  };
  return {
    steady: median((s) => s.steadyMsgPerSecond),
    cpu: median((s) => s.cpuMsPerMessage),
    p50: median((s) => s.p50Ms),
    p99: median((s) => s.p99Ms),
    rss: median((s) => s.peakRssMb),
    ok: list.every((s) => s.ok),
  };
}

/** The markdown section; pure. */
export function renderVariants(
  runs: ReadonlyMap<string, readonly LabSummary[]>,
  chosen: readonly Variant[],
  o: { started: string; messages: number; before: string | undefined },
): string {
  const plain = medians(runs.get("plain") ?? []);
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : "—");
  const lines = [
    HEADING,
    "",
    `Run ${o.started}Z: \`deno task start\` on io_mild, ${o.messages} messages, ${
      runs.get("plain")?.length ?? 0
    } rounds (plain, then each variant, again); medians.` +
    (o.before ? ` "before" is the checkout at ${o.before}.` : ""),
    "",
    "| variant | what | against | steady msg/s | ÷ | CPU ms/msg | ÷ | p50 ms | p99 ms | ÷ | peak RSS MB | result |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    `| plain | the default configuration | — | ${plain.steady} | 1.00 | ${plain.cpu} | 1.00 | ${plain.p50} | ${plain.p99} | 1.00 | ${plain.rss} | ${
      plain.ok ? "OK" : "FAILED"
    } |`,
  ];
  for (const v of chosen) {
    const m = medians(runs.get(v.name) ?? []);
    const against = v.against ?? "plain";
    const b = medians(runs.get(against) ?? []);
    lines.push(
      `| ${v.name} | ${v.what} | ${against} | ${m.steady} | ${
        ratio(m.steady, b.steady)
      } | ${m.cpu} | ${ratio(m.cpu, b.cpu)} | ${m.p50} | ${m.p99} | ${
        ratio(m.p99, b.p99)
      } | ${m.rss} | ${m.ok ? "OK" : "FAILED"} |`,
    );
  }
  return lines.join("\n") + "\n";
}
