/**
 * `deno task start` as an argv for this Deno binary: the lab, the benchmark and
 * the process tests start the worker exactly as an operator does, flags and all.
 */
import denoJson from "../deno.json" with { type: "json" };

export function startCommand(): string[] {
  const [program, ...args] = denoJson.tasks.start.trim().split(/\s+/);
  return [program === "deno" || program === undefined ? Deno.execPath() : program, ...args];
}
