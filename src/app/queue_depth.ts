/**
 * The optional queue-depth poll: GetQueueAttributes on the main queue (and the
 * DLQ once known) every 30 s into `sluice_queue_messages`. A failure (often
 * AccessDenied) is logged, first once and then at most every 10 minutes per
 * queue and error, and never touches readiness.
 */
import type { SqsClient } from "../adapters/sqs_client.ts";
import { SqsError } from "../lib/errors.ts";
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/logger.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import { describe } from "../flow/redrive.ts";

export interface QueueDepthSettings {
  queueUrl: string;
  /** Between polls, ms. Default 30000. */
  intervalMs?: number;
  /** Between two warnings of one queue and error, ms. Default 600000. */
  warnEveryMs?: number;
}

export interface QueueDepthPorts {
  sqs: Pick<SqsClient, "getQueueAttributes">;
  /** The DLQ's URL, read before each poll: a DLQ found later is polled too. */
  dlqUrl: () => string | undefined;
}

export interface QueueDepthServices {
  /** Between polls, and the warnings' rate. */
  clock: Pick<Clock, "monotonic" | "sleep">;
  logger: Pick<Logger, "warn" | "debug">;
  metrics: Pick<SluiceMetrics, "queueMessages">;
}

/** Whether a failure last warned at `last` (undefined: never) is warned again at `now`. */
export function warnAgain(last: number | undefined, now: number, everyMs: number): boolean {
  return last === undefined || now - last >= everyMs;
}

/** Policy, the SQS side and the services, as separate objects. */
export interface QueueDepthOptions {
  settings: QueueDepthSettings;
  ports: QueueDepthPorts;
  services: QueueDepthServices;
}

export class QueueDepthPoller {
  readonly #warned = new Map<string, number>();
  readonly settings: QueueDepthSettings;
  readonly ports: QueueDepthPorts;
  readonly services: QueueDepthServices;

  constructor(options: QueueDepthOptions) {
    ({ settings: this.settings, ports: this.ports, services: this.services } = options);
  }

  /** Polls until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { clock } = this.services;
    while (!signal.aborted) {
      const queues: Array<[string, string]> = [["main", this.settings.queueUrl]];
      const dlqUrl = this.ports.dlqUrl();
      if (dlqUrl) queues.push(["dlq", dlqUrl]);
      for (const [label, url] of queues) {
        if (!await this.#poll(label, url, signal)) return;
      }
      await clock.sleep(this.settings.intervalMs ?? 30_000, signal).catch(() => {});
    }
  }

  /** One queue's depth into the gauge; false when the poll was aborted. */
  async #poll(label: string, url: string, signal: AbortSignal): Promise<boolean> {
    const { metrics, logger, clock } = this.services;
    const now = () => clock.monotonic();
    try {
      const a = await this.ports.sqs.getQueueAttributes(
        url,
        ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        signal,
      );
      const visible = Number(a.ApproximateNumberOfMessages ?? 0);
      metrics.queueMessages.set({ queue: label, state: "visible" }, visible);
      const inFlight = Number(a.ApproximateNumberOfMessagesNotVisible ?? 0);
      metrics.queueMessages.set({ queue: label, state: "in_flight" }, inFlight);
    } catch (error) {
      if (signal.aborted) return false;
      // Keyed by the error code, not the text: a text may carry a request id.
      const key = `${label} ${error instanceof SqsError ? error.code : describe(error)}`;
      if (warnAgain(this.#warned.get(key), now(), this.settings.warnEveryMs ?? 600_000)) {
        this.#warned.set(key, now());
        logger.warn(
          "queue depth poll failed (optional: sluice_queue_messages is not updated; readiness is unaffected)",
          { error, queue: label },
        );
      } else logger.debug("queue depth poll failed", { error, queue: label });
    }
    return true;
  }
}
