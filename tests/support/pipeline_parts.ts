/**
 * Tests describe a pipeline as one flat object of overrides; the Pipeline takes settings,
 * ports and services apart. This splits the first into the three.
 */
import type { PipelinePorts, PipelineServices, PipelineSettings } from "../../src/flow/pipeline.ts";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";

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

/** The settings most pipeline tests share: one poller, small batches, maxReceiveCount 3. */
export const TEST_SETTINGS: PipelineSettings = {
  queueUrl: "http://sqs.local/000/q",
  maxBatch: 10,
  receiveWaitSeconds: 0,
  visibilityTimeoutSeconds: 30,
  maxInFlight: 10,
  deleteOn4xx: false,
  deleteOn5xx: false,
  unknownUserPolicy: "submit",
  dedupTtlSeconds: 3600,
  maxReceiveCount: 3,
  pollers: 1,
};

/** A queue that hands out `messages` once, then ends intake (the test's stop). */
export function deliverOnce(messages: () => SqsMessage[]) {
  const intake = new AbortController();
  let delivered = false;
  return {
    intake,
    sqs: {
      receiveMessage: () => {
        if (delivered) {
          intake.abort();
          return Promise.resolve([]);
        }
        delivered = true;
        return Promise.resolve(messages());
      },
    },
  };
}
