/**
 * What each SQS request's result tells the worker: a count in the metrics, a
 * sample for the SQS breaker, and (for receives only) the last SQS error that
 * /readyz shows.
 */
import type { CircuitBreaker } from "../lib/circuit_breaker.ts";
import { type SluiceMetrics, sqsResultLabel } from "../domain/sluice_metrics.ts";

/**
 * Results of an SQS request that say SQS itself is unwell, not our request (a redirect or an
 * oversized answer: the endpoint is not behaving as SQS).
 */
export function sqsFailed(result: string): boolean {
  return result === "network" || result === "timeout" || result === "redirect" ||
    result === "too_large" ||
    /throttl|internal|unavailable|overloaded|5\d\d/i.test(result);
}

/** Request results about one receipt handle, not about SQS's health. */
const STALE_RESULTS = new Set(["ReceiptHandleIsInvalid", "MessageNotInflight"]);

/**
 * The last SQS error after a request: readiness means SQS answers our receives
 * (credential and permission errors count too). Only receives: the queue-depth
 * poll is optional, and a missing GetQueueAttributes permission must not make
 * /readyz flap every 30 s (the redrive read reports itself).
 */
export function nextSqsError(
  before: string | undefined,
  action: string,
  result: string,
  detail?: string,
): string | undefined {
  if (action !== "ReceiveMessage") return before;
  if (result === "ok") return undefined;
  if (result === "aborted" || STALE_RESULTS.has(result)) return before;
  return `${action}: ${detail ?? result}`;
}

export interface SqsObserverPorts {
  /** The SQS breaker: every request is a sample. */
  breaker: Pick<CircuitBreaker, "record">;
  /** Called when the last SQS error appears or clears. */
  onReadinessChange: () => void;
}

/** Results that say a queue or the worker's rights on it changed. */
export function queueChanged(result: string): boolean {
  return /NonExistentQueue|QueueDoesNotExist|AccessDenied/.test(result);
}

export interface SqsObserverServices {
  metrics: Pick<SluiceMetrics, "sqsRequests">;
}

export interface SqsObserverOptions {
  ports: SqsObserverPorts;
  services: SqsObserverServices;
}

export class SqsObserver {
  readonly #ports: SqsObserverPorts;
  readonly #services: SqsObserverServices;
  #lastError: string | undefined;
  #onQueueChange: (() => void) | undefined;

  constructor(options: SqsObserverOptions) {
    this.#ports = options.ports;
    this.#services = options.services;
  }

  /**
   * Calls `fn` when SQS says a queue does not exist or refuses a request: the RedrivePolicy
   * (read on the client this observer watches) may have changed.
   */
  onQueueChange(fn: () => void): void {
    this.#onQueueChange = fn;
  }

  /** The last ReceiveMessage failure; undefined once a receive succeeds. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** For SqsClientOptions.onRequest. */
  observe = (action: string, result: string, _durationMs?: number, detail?: string): void => {
    this.#services.metrics.sqsRequests.inc({ action, result: sqsResultLabel(result) });
    if (queueChanged(result)) this.#onQueueChange?.();
    const failed = sqsFailed(result);
    this.#ports.breaker.record(!failed, failed ? `${action}: ${detail ?? result}` : undefined);
    const before = this.#lastError;
    this.#lastError = nextSqsError(before, action, result, detail);
    if ((before === undefined) !== (this.#lastError === undefined)) {
      this.#ports.onReadinessChange();
    }
  };
}
