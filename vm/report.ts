/**
 * The VM test's output: a plan line, then one `ok N - name: figures` or
 * `FAIL N - name: figures` line per step (with `#` notes under a failure),
 * which .ci/run counts. Each step runs under its own deadline.
 */
import type { StepResult } from "./context.ts";
import { withTimeout } from "./exec.ts";

export interface Step {
  n: number;
  name: string;
  /** the step's deadline */
  seconds: number;
  run: () => Promise<StepResult>;
}

/** One step's line(s). */
export function formatStep(step: Pick<Step, "n" | "name">, r: StepResult, at: string): string[] {
  const head = `${r.ok ? "ok" : "FAIL"} ${step.n} - ${step.name}: ${r.figure} [${at}]`;
  return [head, ...(r.ok ? [] : (r.notes ?? []).map((n) => `#   ${n}`))];
}

/** Runs the steps in order, printing as it goes; returns how many failed. */
export async function runSteps(steps: readonly Step[], elapsed: () => string): Promise<number> {
  console.log(`1..${steps.length}`);
  let failed = 0;
  for (const step of steps) {
    let result: StepResult;
    try {
      result = await withTimeout(step.run(), step.seconds) ??
        { ok: false, figure: `did not finish within ${step.seconds} s` };
    } catch (err) {
      result = {
        ok: false,
        figure: `threw: ${(err as Error).message.split("\n")[0]}`,
        notes: [String((err as Error).stack ?? err)],
      };
    }
    if (!result.ok) failed++;
    for (const line of formatStep(step, result, elapsed())) console.log(line);
  }
  return failed;
}
