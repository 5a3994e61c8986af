/**
 * `deno task bench --variants a,b --paired`: each variant runs at the same time as its base (the
 * plain configuration, or the variant it is compared against), both workers pinned to the same
 * CPU with `taskset`, each with its own lab (queue, simulators, counters). Whatever the machine
 * does meanwhile (another tenant, a frequency step, the lab's own work) falls on both workers of
 * a pair alike, so the ratio of their CPU per message is steady where figures of runs one after
 * the other are not: on the 2-core VM the same code twice gave 1.00 ± 0.02 in pairs (four pairs)
 * against ± 15 % between single runs. Sharing a core halves each worker's rate, so only the
 * ratios mean anything here; the absolute figures are the sequential bench's.
 */
import { type LabOptions, type LabSummary, runLab } from "../lab/lab.ts";
import { median } from "./bench_run.ts";
import { writeSection } from "./fleet.ts";
import { type Variant, type VariantFlags, VARIANTS } from "./variants.ts";

export const PAIRED_HEADING = "## Paired variants: each beside its base, on one CPU";

/** One pair's figures: the variant's and its base's run of the same moment. */
export interface Pair {
  variant: LabSummary;
  base: LabSummary;
}

/** The CPU the workers share: the machine's last, away from the bench's first. */
async function pinned(cmd: readonly string[]): Promise<string[]> {
  const cpus = navigator.hardwareConcurrency;
  const taskset = await new Deno.Command("taskset", {
    args: ["-V"],
    stdout: "null",
    stderr: "null",
  })
    .output().then((o) => o.success, () => false);
  return taskset && cpus > 1 ? ["taskset", "-c", String(cpus - 1), ...cmd] : [...cmd];
}

export async function runPaired(flags: VariantFlags, base: LabOptions): Promise<number> {
  const chosen = VARIANTS.filter((v) => flags.variants.includes(v.name));
  const workerCmd = await pinned(base.workerCmd ?? []);
  const pinnedBase = { ...base, workerCmd };
  const options = (v: Variant | undefined) => v ? v.options(pinnedBase, flags) : pinnedBase;
  const pairs = new Map<string, Pair[]>(chosen.map((v) => [v.name, []]));
  const started = new Date().toISOString().slice(0, 16);
  for (let round = 1; round <= flags.repeat; round++) {
    for (const v of chosen) {
      const against = VARIANTS.find((x) => x.name === v.against);
      // Which of the two starts first alternates, so neither always gets the head start.
      const runs = [options(against), options(v)];
      if (round % 2 === 0) runs.reverse();
      const done = await Promise.all(runs.map((o) => runLab(o)));
      if (round % 2 === 0) done.reverse();
      const pair = { base: done[0]!, variant: done[1]! };
      pairs.get(v.name)!.push(pair);
      console.error(
        `[round ${round} ${v.name}] CPU ms/msg ${pair.variant.cpuMsPerMessage} beside ${pair.base.cpuMsPerMessage} (${
          ratio(pair.variant.cpuMsPerMessage, pair.base.cpuMsPerMessage)
        })${pair.variant.ok && pair.base.ok ? "" : "; a run FAILED"}`,
      );
    }
  }
  const section = renderPaired(pairs, chosen, {
    started,
    messages: flags.messages,
    before: flags.before,
  });
  console.log(section);
  if (flags.write) await writeSection(section, PAIRED_HEADING, "Paired variants");
  return [...pairs.values()].flat().every((p) => p.variant.ok && p.base.ok) ? 0 : 1;
}

const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(3) : "—");

/** The markdown section: per variant the median of its pairs' ratios, and each pair's; pure. */
export function renderPaired(
  pairs: ReadonlyMap<string, readonly Pair[]>,
  chosen: readonly Variant[],
  o: { started: string; messages: number; before: string | undefined },
): string {
  const count = Math.max(0, ...[...pairs.values()].map((p) => p.length));
  const lines = [
    PAIRED_HEADING,
    "",
    `Run ${o.started}Z: \`deno task start\` on io_mild, ${o.messages} messages, ${count} pairs per variant, the two workers of a pair at once on one CPU; a ratio is the variant's figure ÷ its base's in the same pair, the median over the pairs.` +
    (o.before ? ` "before" is the checkout at ${o.before}.` : ""),
    "",
    "| variant | what | against | CPU ms/msg ÷ | each pair | steady msg/s ÷ | p99 ÷ | result |",
    "| --- | --- | --- | ---: | --- | ---: | ---: | --- |",
  ];
  for (const v of chosen) {
    const list = pairs.get(v.name) ?? [];
    const of = (pick: (s: LabSummary) => number) =>
      list.map((p) => pick(p.base) > 0 ? pick(p.variant) / pick(p.base) : 0);
    const cpu = of((s) => s.cpuMsPerMessage);
    const ok = list.every((p) => p.variant.ok && p.base.ok);
    lines.push(
      `| ${v.name} | ${v.what} | ${v.against ?? "plain"} | ${median(cpu).toFixed(3)} | ${
        cpu.map((r) => r.toFixed(3)).join(", ")
      } | ${median(of((s) => s.steadyMsgPerSecond)).toFixed(2)} | ${
        median(of((s) => s.p99Ms)).toFixed(2)
      } | ${ok ? "OK" : "FAILED"} |`,
    );
  }
  return lines.join("\n") + "\n";
}
