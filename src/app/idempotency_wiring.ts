/**
 * Builds the idempotency gate when IDEMPOTENCY_TABLE is set: the
 * DynamoDB client on the same credential chain as SQS, its requests counted in
 * the metrics, the store and the gate. Unset, nothing is built and the
 * pipeline keeps its in-process dedupe only.
 */
import { type AwsDeps, createDynamoDbClient } from "./aws_clients.ts";
import type { Logger } from "../lib/logger.ts";
import { type IdempotencyGate, StoreGate } from "../flow/idempotency_gate.ts";
import { DynamoDbStore, probeKeyedTable } from "../flow/idempotency_store.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import type { Config } from "./config.ts";
import type { CircuitBreaker } from "../lib/circuit_breaker.ts";
import type { Clock } from "../lib/clock.ts";

/** The runtime services the gate's DynamoDB client needs (the same as SQS's). */
export type IdempotencyDeps = AwsDeps & { random?: () => number };

/** The gate's breaker and clock. */
export interface GateServices {
  breaker: Pick<CircuitBreaker, "run">;
  clock: Clock;
}

/** The gate the pipeline uses, and the startup check of its table. */
export interface Idempotency {
  gate: IdempotencyGate;
  /** The table's problems (missing, refused, wrong key schema); empty when usable. */
  check(signal: AbortSignal): Promise<string[]>;
}

/** The gate and its check, or undefined when IDEMPOTENCY_TABLE is unset. */
export function createIdempotency(
  config: Config,
  deps: IdempotencyDeps,
  metrics: SluiceMetrics,
  logger: Logger,
  workerId: string,
  services: GateServices,
): Idempotency | undefined {
  const table = config.idempotencyTable;
  if (!table) return undefined;
  const client = createDynamoDbClient(config, deps, (action, result, ms) => {
    const known = result === "ok" || result === "ConditionalCheckFailedException";
    metrics.idempotencyRequests.inc({ action, result: known ? result : "error" });
    metrics.idempotencyDuration.observe(undefined, ms / 1000);
    if (!known && result !== "aborted") {
      logger.debug("idempotency table request failed", { action, result });
    }
  });
  logger.info("idempotency table in use", { table, worker_id: workerId });
  metrics.retries.init({ target: "table" });
  const gate = new StoreGate({
    store: new DynamoDbStore(client, table),
    workerId,
    visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
    dedupTtlSeconds: config.dedupTtlSeconds,
    submitMarginMs: config.httpTimeoutMs,
    logger,
    onConflict: (result) => metrics.idempotencyConflicts.inc({ result }),
    onTakeover: () => metrics.idempotencyTakeovers.inc(),
    onFenced: (action) => metrics.idempotencyFenced.inc({ action }),
    onAtLeastOnce: (cause) => metrics.atLeastOnce.inc({ cause }),
    ...services,
  });
  return { gate, check: (signal) => probeKeyedTable(client, table, signal) };
}

/**
 * For `check-config --probe`: problems with a table the config names (IDEMPOTENCY_TABLE or
 * RATE_LIMIT_TABLE: missing, wrong key schema, not ACTIVE), empty when it is fine.
 */
export function probeTable(
  config: Config,
  deps: IdempotencyDeps,
  variable: "IDEMPOTENCY_TABLE" | "RATE_LIMIT_TABLE",
  table: string,
  signal?: AbortSignal,
): Promise<string[]> {
  return probeKeyedTable(createDynamoDbClient(config, deps), table, signal, variable);
}

/** A worker id unique within the fleet (64 random bits; the owner adds the receipt handle). */
export function workerIdOf(random: () => number): string {
  const part = () => Math.floor(random() * 0x100000000).toString(16).padStart(8, "0");
  return `w-${part()}${part()}`;
}
