/**
 * The worker's circuit breakers (enrichment, validator, SQS, and the idempotency table when
 * one is set): each
 * change shown in `sluice_breaker_state`, logged with its cause, and handed on
 * (readiness depends on it). `pausedFor` says when intake waits for one.
 */
import type { Clock } from "../lib/clock.ts";
import { type BreakerState, CircuitBreaker } from "../lib/circuit_breaker.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import type { StateLog } from "./state_log.ts";

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

export interface Breakers {
  enrichment: CircuitBreaker;
  validator: CircuitBreaker;
  sqs: CircuitBreaker;
  /** The idempotency table's, when IDEMPOTENCY_TABLE is set. */
  table?: CircuitBreaker;
  /** S3's, for the payloads of extended-client pointers (S3_PAYLOADS=auto). */
  s3?: CircuitBreaker;
  /** RATE_LIMIT_TABLE's, when one is set. */
  rateTable?: CircuitBreaker;
}

export interface BreakersPorts {
  /** Called after every change of any breaker's state. */
  onChange: () => void;
}

export interface BreakersServices {
  clock: Pick<Clock, "monotonic" | "timer">;
  metrics: Pick<SluiceMetrics, "breakerState">;
  states: Pick<StateLog, "breaker">;
}

export interface BreakersOptions {
  /** IDEMPOTENCY_TABLE is set: a breaker for the table too. */
  table?: boolean;
  /** S3_PAYLOADS=auto: a breaker for S3 too. */
  s3?: boolean;
  /** RATE_LIMIT_TABLE is set: a breaker for it too. */
  rateTable?: boolean;
  ports: BreakersPorts;
  services: BreakersServices;
}

export function createBreakers(options: BreakersOptions): Breakers {
  const { clock, metrics, states } = options.services;
  const breaker = (name: string, minimumCalls: number) => {
    const b: CircuitBreaker = new CircuitBreaker({
      name,
      minimumCalls,
      clock,
      onStateChange: (to, from) => {
        metrics.breakerState.set({ target: name }, BREAKER_VALUE[to]);
        states.breaker(name, to, from, b.lastFailure?.error);
        options.ports.onChange();
      },
    });
    metrics.breakerState.set({ target: name }, 0);
    return b;
  };
  return {
    // Batched lookups make few calls (~1 per 60 messages): 20 of them in a 10 s window would let
    // a brownout run its course before the breaker sees it.
    enrichment: breaker("enrichment", 5),
    validator: breaker("validator", 20),
    sqs: breaker("sqs", 5),
    ...(options.table ? { table: breaker("table", 5) } : {}),
    ...(options.s3 ? { s3: breaker("s3", 5) } : {}),
    ...(options.rateTable ? { rateTable: breaker("rate_table", 5) } : {}),
  };
}

/** Intake pauses while the validator's, SQS's or the table's breaker is open: why, and how long. */
export function pausedFor(
  breakers: ReadonlyArray<Pick<CircuitBreaker, "name" | "state" | "remainingCooldownMs">>,
): { reason: string; ms: number } | undefined {
  for (const b of breakers) {
    if (b.state === "open") {
      return { reason: `${b.name} circuit breaker is open`, ms: b.remainingCooldownMs() };
    }
  }
  return undefined;
}
