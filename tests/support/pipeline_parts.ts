/**
 * Tests describe a pipeline as one flat object of overrides; the Pipeline takes settings,
 * ports and services apart. This splits the first into the three.
 */
import type { PipelinePorts, PipelineServices, PipelineSettings } from "../../src/flow/pipeline.ts";

export type PipelineOptions = PipelineSettings & PipelinePorts & PipelineServices;

const PORTS = new Set([
  "sqs",
  "pausedFor",
  "lookup",
  "submit",
  "settler",
  "heartbeat",
  "redrive",
  "idempotency",
]);
const SERVICES = new Set(["metrics", "logger", "onOutcome", "now", "monotonic", "random", "sleep"]);

export function pipelineParts(
  options: PipelineOptions,
): [PipelineSettings, PipelinePorts, PipelineServices] {
  const parts: Array<Record<string, unknown>> = [{}, {}, {}];
  for (const [key, value] of Object.entries(options)) {
    parts[PORTS.has(key) ? 1 : SERVICES.has(key) ? 2 : 0]![key] = value;
  }
  return parts as unknown as [PipelineSettings, PipelinePorts, PipelineServices];
}
