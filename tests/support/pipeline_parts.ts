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
  "cached",
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

/** Message m-1 of user 7, as SQS hands it out on its `receiveCount`th receive. */
export function oneMessage(receiveCount = 1): SqsMessage {
  return {
    messageId: "sqs-1",
    receiptHandle: "h-1",
    body: JSON.stringify({ message_id: "m-1", user_id: "7", event_ts: 1, payload: {} }),
    attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: "0" },
    messageAttributes: {},
  };
}

/** What a settler call did, by kind: delete, visibility, dead_letter or requeue. */
export type SettleKind = "delete" | "visibility" | "dead_letter" | "requeue";

/**
 * A settler with a DLQ whose every call succeeds; `heard` is told each call's kind and arguments
 * (default: nothing is kept).
 */
export function fakeSettler(
  heard: (kind: SettleKind, args: unknown[]) => void = () => {},
): PipelinePorts["settler"] {
  const done = (kind: SettleKind) => (...args: unknown[]) => {
    heard(kind, args);
    return Promise.resolve("done" as const);
  };
  return {
    hasDlq: true,
    delete: done("delete"),
    changeVisibility: done("visibility"),
    deadLetter: done("dead_letter"),
    requeue: done("requeue"),
  };
}

/** A heartbeat that does nothing, for tests that do not look at visibility extensions. */
export const IDLE_HEARTBEAT: PipelinePorts["heartbeat"] = {
  track: () => {},
  untrack: () => {},
  isStale: () => false,
};
