/** The bench's variants: flags, and the section comparing each variant with the plain runs. */
import assert from "node:assert/strict";
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
  assert.match(String(parseVariantFlags(["--variants", "fast"])), /expected some of fifo, before/);
  assert.match(String(parseVariantFlags(["--variants", "before"])), /needs --before DIR/);
  assert.match(String(parseVariantFlags(["--variants", "fifo", "--repeat", "0"])), /--repeat/);
  assert.match(
    String(parseVariantFlags(["--variants", "fifo", "--fast"])),
    /unknown flag "--fast"/,
  );
});

Deno.test("bench variants: the section: medians per variant and ratios to the plain runs of the same rounds", () => {
  const run = (steady: number, cpu: number, ok = true) =>
    labSummary({ steadyMsgPerSecond: steady, cpuMsPerMessage: cpu, ok });
  const runs = new Map([
    ["plain", [run(1000, 0.5), run(900, 0.4), run(1100, 0.6)]],
    ["fifo", [run(800, 0.5), run(850, 0.55), run(10, 9, false)]],
  ]);
  const fifo = VARIANTS.filter((v) => v.name === "fifo");
  const text = renderVariants(runs, fifo, {
    started: "2026-12-07T11:00",
    messages: 100,
    before: undefined,
  });
  const rows = text.split("\n").filter((l) => l.startsWith("| plain") || l.startsWith("| fifo"));
  assert.equal(rows.length, 2);
  assert.match(rows[0]!, /\| plain \| .* \| 1000 \| 1\.00 \| 0\.5 \| 1\.00 \|/);
  // medians: 800 msg/s (÷1000 = 0.80), 0.55 ms CPU (÷0.5 = 1.10); one failed run fails the row
  assert.match(rows[1]!, /\| fifo \| .* \| 800 \| 0\.80 \| 0\.55 \| 1\.10 \| .* \| FAILED \|$/);
  assert.match(text, /3 rounds/);
});
