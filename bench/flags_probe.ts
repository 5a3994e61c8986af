/**
 * `deno run -A bench/flags_probe.ts [messages] [scenario] [variant...]`: runs the lab once per
 * V8-flag variant of `deno task start`'s command (and the lean baseline) on the same seeded
 * queue, and prints steady msg/s, CPU ms per message and peak RSS per variant. It is how the
 * semi-space decision in bench/RESULTS.md was measured; `deno task bench` does not run it.
 * Variants: lean (or lean-semi8: with that semi-space cap), a semi-space size in MB ("semi4"),
 * "plain" (no V8 flags), or V8 flags ("v8:minor-ms,max-semi-space-size=8"), each optionally
 * followed by environment overrides for the worker: "plain+VALIDATOR_CONCURRENCY=256".
 */
import { BENCH_WORKLOAD } from "./workload.ts";
import { runLab, type Scenario } from "../lab/lab.ts";
import { startCommand } from "../lab/start_command.ts";

/** The worker argv of a variant: the start command with its --v8-flags replaced. */
export function variantCommand(variant: string): string[] {
  const lean = /^lean(?:-semi(\d+))?$/.exec(variant);
  if (lean) {
    const flags = lean[1] ? [`--v8-flags=--max-semi-space-size=${lean[1]}`] : [];
    return [
      Deno.execPath(),
      "run",
      "-A",
      ...flags,
      new URL("./lean_worker.ts", import.meta.url).pathname,
    ];
  }
  const base = startCommand().filter((a) => !a.startsWith("--v8-flags="));
  const semi = /^semi(\d+)$/.exec(variant)?.[1];
  const extra = variant.startsWith("v8:") ? variant.slice(3).split(",") : [];
  const flags = [
    "--max-old-space-size=1024",
    ...(semi ? [`--max-semi-space-size=${semi}`] : []),
    ...extra.map((f) => `--${f}`),
  ];
  return [...base.slice(0, -1), `--v8-flags=${flags.join(",")}`, base.at(-1)!];
}

if (import.meta.main) {
  const [messages = "20000", scenario = "io_mild", ...variants] = Deno.args;
  for (const spec of variants.length > 0 ? variants : ["semi4", "plain", "lean"]) {
    const [variant = "plain", ...overrides] = spec.split("+");
    const workerEnv = Object.fromEntries(overrides.map((o) => o.split("=", 2) as [string, string]));
    const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
    const s = await runLab({
      scenario: scenario as Scenario,
      messages: Number(messages),
      rate: 0,
      ...BENCH_WORKLOAD,
      workerCmd: variantCommand(variant),
      workerEnv,
    });
    console.log(
      `${spec}: steady ${s.steadyMsgPerSecond} msg/s, ${s.msgPerSecond} msg/s overall, ` +
        `CPU ${s.cpuMsPerMessage} ms/msg, peak RSS ${s.peakRssMb} MB, drain ${s.durationSeconds} s, ` +
        `${s.enrichBrownoutRequests} calls in brownout windows, load ${load}` +
        (s.ok ? "" : `; ${s.problems.slice(0, 2).join("; ")}`),
    );
  }
}
