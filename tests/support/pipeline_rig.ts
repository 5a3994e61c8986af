/**
 * A pipeline for tests: its three parts given apart, each with defaults for what a test does
 * not look at (a settler whose calls succeed, an idle heartbeat, a known profile, an
 * accepting validator, maxReceiveCount 3, a fake clock), and fakes for SQS's side.
 */
import { Pipeline, type PipelinePorts, type PipelineServices } from "../../src/flow/pipeline.ts";
import type { IntakeSettings } from "../../src/flow/intake.ts";
import type { DedupeSettings } from "../../src/flow/dedupe.ts";
import type { RoutePolicy } from "../../src/flow/message_context.ts";
import type { RateSettings } from "../../src/flow/rate_limiter.ts";
import type { SqsMessage } from "../../src/adapters/sqs_client.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import { createLogger } from "../../src/lib/logger.ts";
import { FakeClock } from "./fake_clock.ts";

/** The intake most pipeline tests share: one poller, small batches, no long polls. */
export const TEST_INTAKE: IntakeSettings = {
  queueUrl: "http://sqs.local/000/q",
  maxBatch: 10,
  receiveWaitSeconds: 0,
  visibilityTimeoutSeconds: 30,
  maxInFlight: 10,
  pollers: 1,
};

export const TEST_POLICY: RoutePolicy = {
  deleteOn4xx: false,
  deleteOn5xx: false,
  unknownUserPolicy: "submit",
};

export interface RigParts {
  intake?: Partial<IntakeSettings>;
  dedupe?: Partial<DedupeSettings>;
  policy?: Partial<RoutePolicy>;
  /** RATE_LIMIT with its key; default none. */
  rate?: RateSettings;
  /** The RedrivePolicy's maxReceiveCount (known), when `ports.redrive` is not given. Default 3. */
  maxReceiveCount?: number | undefined;
  ports: Partial<PipelinePorts> & Pick<PipelinePorts, "sqs">;
  services?: Partial<PipelineServices>;
}

export function testPipeline(parts: RigParts): Pipeline {
  const maxReceiveCount = "maxReceiveCount" in parts ? parts.maxReceiveCount : 3;
  const ports: PipelinePorts = {
    settler: fakeSettler(),
    heartbeat: IDLE_HEARTBEAT,
    lookup: () => Promise.resolve({ status: "ok", profile: { user_id: "7" } }),
    cached: () => undefined,
    submit: () => Promise.resolve({ accepted: true, status: 200 }),
    redrive: () => ({ known: true, maxReceiveCount }),
    ...parts.ports,
  };
  const services: PipelineServices = {
    clock: new FakeClock(),
    metrics: createSluiceMetrics(),
    logger: createLogger({ level: "error", write: () => {}, clock: new FakeClock({ start: 0 }) }),
    ...parts.services,
  };
  return new Pipeline(
    {
      intake: { ...TEST_INTAKE, ...parts.intake },
      dedupe: { dedupTtlSeconds: 3600, ...parts.dedupe },
      policy: { ...TEST_POLICY, ...parts.policy },
      rate: parts.rate,
    },
    ports,
    services,
  );
}

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
