/** The bench's variants: flags, and the section comparing each variant with the plain runs. */
import assert from "node:assert/strict";
import { renderPaired } from "../../bench/paired.ts";
import { parseVariantFlags, renderVariants, VARIANTS } from "../../bench/variants.ts";
import { labSummary } from "../support/lab_summary.ts";

Deno.test("bench variants: flags: defaults, unknown variants and a before without a directory refused", () => {
  const f = parseVariantFlags(["--variants", "fifo"]);
  assert.ok(typeof f !== "string");
  assert.deepEqual(f, {
    variants: ["fifo"],
    messages: 20_000,
    repeat: 3,
    before: undefined,
    write: true,
    paired: false,
  });
  const g = parseVariantFlags([
    "--variants",
    "fifo,before",
    "--before",
    "/x",
    "--repeat",
    "5",
    "--no-write",
  ]);
  assert.ok(typeof g !== "string");
  assert.deepEqual([g.variants, g.before, g.repeat, g.write], [["fifo", "before"], "/x", 5, false]);
  assert.match(
    String(parseVariantFlags(["--variants", "fast"])),
    /expected some of fifo, fifo-failing, traced, trace, before/,
  );
  assert.match(String(parseVariantFlags(["--variants", "before"])), /needs --before DIR/);
  assert.match(String(parseVariantFlags(["--variants", "fifo", "--repeat", "0"])), /--repeat/);
  assert.match(
    String(parseVariantFlags(["--variants", "fifo", "--fast"])),
    /unknown flag "--fast"/,
  );
});

Deno.test("bench variants: the section: medians per variant, ratios to the plain runs or to the variant named as its base", () => {
  const run = (steady: number, cpu: number, p99Ms: number, ok = true) =>
    labSummary({ steadyMsgPerSecond: steady, cpuMsPerMessage: cpu, p99Ms, ok });
  const runs = new Map([
    ["plain", [run(1000, 0.5, 100), run(900, 0.4, 90), run(1100, 0.6, 110)]],
    ["fifo", [run(800, 0.5, 200), run(850, 0.55, 220), run(10, 9, 9000, false)]],
    ["fifo-failing", [run(700, 0.5, 230), run(700, 0.5, 240), run(700, 0.5, 250)]],
  ]);
  const chosen = VARIANTS.filter((v) => v.name === "fifo" || v.name === "fifo-failing");
  const text = renderVariants(runs, chosen, {
    started: "2026-12-07T11:00",
    messages: 100,
    before: undefined,
  });
  const row = (name: string) => text.split("\n").find((l) => l.startsWith(`| ${name} |`)) ?? "";
  assert.match(row("plain"), /\| — \| 1000 \| 1\.00 \| 0\.5 \| 1\.00 \| 50 \| 100 \| 1\.00 \|/);
  // medians: 800 msg/s (÷1000), 0.55 ms CPU (÷0.5), p99 220 (÷100); one failed run fails the row
  assert.match(
    row("fifo"),
    /\| plain \| 800 \| 0\.80 \| 0\.55 \| 1\.10 \| 50 \| 220 \| 2\.20 \| .* \| FAILED \|$/,
  );
  // against fifo: p99 240 ÷ 220
  assert.match(
    row("fifo-failing"),
    /\| fifo \| 700 \| 0\.88 \| 0\.5 \| 0\.91 \| 50 \| 240 \| 1\.09 \| .* \| OK \|$/,
  );
  assert.match(text, /3 rounds/);
});

Deno.test("bench variants: paired: the median of each pair's ratio, every pair listed, a failed run fails the row", () => {
  const run = (steady: number, cpu: number, p99Ms: number, ok = true) =>
    labSummary({ steadyMsgPerSecond: steady, cpuMsPerMessage: cpu, p99Ms, ok });
  const pairs = new Map([
    ["trace", [
      { base: run(1000, 0.2, 100), variant: run(900, 0.23, 110) },
      { base: run(500, 0.4, 100), variant: run(450, 0.44, 120) },
      { base: run(800, 0.25, 100), variant: run(800, 0.3, 100) },
    ]],
    ["before", [{ base: run(1000, 0.2, 100), variant: run(1000, 0.2, 100, false) }]],
  ]);
  const chosen = VARIANTS.filter((v) => v.name === "trace" || v.name === "before");
  const text = renderPaired(pairs, chosen, {
    started: "2026-12-07T16:00",
    messages: 10,
    before: "/x",
  });
  const row = (name: string) => text.split("\n").find((l) => l.startsWith(`| ${name} |`)) ?? "";
  // CPU ratios 1.15, 1.10, 1.20: median 1.15, though the medians of the runs would give 1.10
  assert.match(
    row("trace"),
    /\| traced \| 1\.150 \| 1\.150, 1\.100, 1\.200 \| 0\.90 \| 1\.10 \| OK \|$/,
  );
  assert.match(row("before"), /\| 1\.000 \| 1\.000 \| 1\.00 \| 1\.00 \| FAILED \|$/);
  assert.match(text, /"before" is the checkout at \/x/);
  const flags = parseVariantFlags(["--variants", "trace", "--paired"]);
  assert.ok(typeof flags !== "string" && flags.paired);
});
