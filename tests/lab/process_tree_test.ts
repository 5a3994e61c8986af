import assert from "node:assert/strict";
import { descendants, parseStat, processTreeUsage } from "../../lab/process_tree.ts";
import { steadyRate } from "../../lab/lab.ts";

Deno.test("process tree: parseStat: ppid and utime+stime, even with spaces and ')' in the command name", () => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
  const rows: Array<[string, { ppid: number; cpuTicks: number } | undefined]> = [
    ["42 (deno) S 7 42 42 0 -1 4194560 100 0 0 0 250 30 0 0 20 0", { ppid: 7, cpuTicks: 280 }],
    ["43 (tokio (w) x) R 42 42 42 0 -1 0 1 0 0 0 5 6 0 0", { ppid: 42, cpuTicks: 11 }],
    ["garbage", undefined],
  ];
  for (const [line, expected] of rows) assert.deepEqual(parseStat(line), expected, line);
});

Deno.test("process tree: descendants: the root and everything below it, nothing beside it", () => {
  // pid -> ppid: 1 ─ 10 (deno task) ─ 11 (deno run) ─ 12; 1 ─ 20 (another worker)
  const parents = new Map([[1, 0], [10, 1], [11, 10], [12, 11], [20, 1]]);
  assert.deepEqual(descendants(10, parents).sort(), [10, 11, 12]);
  assert.deepEqual(descendants(20, parents), [20]);
  assert.deepEqual(descendants(99, parents), [], "a process that is gone");
});

Deno.test("process tree: processTreeUsage reads this process from /proc", async () => {
  const usage = await processTreeUsage(Deno.pid);
  if (Deno.build.os !== "linux") return;
  assert.ok(usage.processes >= 1);
  assert.ok(usage.peakRssKb > 1000, `VmHWM ${usage.peakRssKb} kB`);
});

Deno.test("process tree: steadyRate: acceptances between p10 and p90 over their span", () => {
  // 101 acceptances 10 ms apart: p10 is the 11th (100 ms), p90 the 91st (900 ms): 80 in 0.8 s.
  const even = Array.from({ length: 101 }, (_, i) => 1000 + i * 10);
  assert.equal(steadyRate(even), 100);
  // A slow warm-up and tail do not count: the same middle with 10 stragglers at each end.
  const ragged = [...even.map((t, i) => i < 10 ? t - 5000 : i > 90 ? t + 5000 : t)];
  assert.equal(steadyRate(ragged.reverse()), 100, "order does not matter either");
  assert.equal(steadyRate([1, 2, 3]), 0, "too few acceptances");
});
