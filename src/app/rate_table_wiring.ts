/**
 * Builds the fleet's rate window when RATE_LIMIT_TABLE is set (docs/rate-limits.md): a DynamoDB
 * client on the same credential chain as SQS, its requests counted in the metrics, the store and
 * the FleetRate the pipeline's rate gate asks after each local slot. Unset, nothing is built.
 */
import { type AwsDeps, createDynamoDbClient } from "./aws_clients.ts";
import type { Logger } from "../lib/logger.ts";
import type { SluiceMetrics } from "../domain/sluice_metrics.ts";
import type { Config } from "./config.ts";
import type { CircuitBreaker } from "../lib/circuit_breaker.ts";
import type { Clock } from "../lib/clock.ts";
import { DynamoDbRateStore, FleetRate } from "../flow/rate_table.ts";
import { probeKeyedTable } from "../flow/idempotency_store.ts";

/** The fleet window, and the startup check of its table. */
export interface RateTable {
  fleet: FleetRate;
  /** The table's problems (missing, refused, wrong key schema); empty when usable. */
  check(signal: AbortSignal): Promise<string[]>;
}

/** The fleet window and its check, or undefined without RATE_LIMIT_TABLE (or RATE_LIMIT). */
export function createRateTable(
  config: Config,
  deps: AwsDeps,
  services: { metrics: SluiceMetrics; logger: Logger; breaker: CircuitBreaker; clock: Clock },
): RateTable | undefined {
  const table = config.rateLimitTable;
  if (!table || !config.rateLimit) return undefined;
  const { metrics, logger, breaker, clock } = services;
  const client = createDynamoDbClient(config, deps, (action, result) => {
    const known = result === "ok" || result === "ConditionalCheckFailedException";
    metrics.rateTableRequests.inc({ action, result: known ? result : "error" });
  });
  logger.info("rate-limit table in use: RATE_LIMIT holds for the fleet", { table });
  const fleet = new FleetRate(config.rateLimit, new DynamoDbRateStore(client, table), {
    clock,
    breaker,
  });
  return {
    fleet,
    check: (signal) => probeKeyedTable(client, table, signal, "RATE_LIMIT_TABLE"),
  };
}
