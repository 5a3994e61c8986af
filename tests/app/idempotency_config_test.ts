/** IDEMPOTENCY_TABLE and AWS_ENDPOINT_URL_DYNAMODB: parsing, the gate only when set, the probe. */
import { systemClock } from "../../src/lib/clock.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { QUIET_LOGGER } from "../support/quiet_logger.ts";
import assert from "node:assert/strict";
import { loadConfig } from "../../src/app/config.ts";
import { createIdempotency, probeTable, workerIdOf } from "../../src/app/idempotency_wiring.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";
import { startDynalite } from "../../lab/dynalite.ts";

const BASE = {
  SQS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
  ENRICH_URL: "http://127.0.0.1:1",
  VALIDATOR_URL: "http://127.0.0.1:2",
  AWS_ACCESS_KEY_ID: "a",
  AWS_SECRET_ACCESS_KEY: "b",
};
const logger = QUIET_LOGGER;
const SERVICES = {
  breaker: { run: <T>(fn: () => Promise<T>) => fn() },
  clock: new FakeClock(),
};

Deno.test("idempotency config: config: IDEMPOTENCY_TABLE unset builds no gate; set, the endpoint follows the overrides", () => {
  const plain = loadConfig(BASE);
  assert.equal(plain.idempotencyTable, undefined);
  assert.equal(
    createIdempotency(
      plain,
      { env: BASE, clock: SERVICES.clock },
      createSluiceMetrics(),
      logger,
      "w",
      SERVICES,
    ),
    undefined,
  );
  const set = loadConfig({ ...BASE, IDEMPOTENCY_TABLE: "sluice-idempotency" });
  assert.equal(set.idempotencyTable, "sluice-idempotency");
  assert.equal(set.dynamodbEndpoint, undefined);
  assert.ok(
    createIdempotency(
      set,
      { env: BASE, clock: SERVICES.clock },
      createSluiceMetrics(),
      logger,
      "w",
      SERVICES,
    ),
  );
  assert.equal(
    loadConfig({ ...BASE, AWS_ENDPOINT_URL: "http://127.0.0.1:9" }).dynamodbEndpoint,
    "http://127.0.0.1:9",
  );
  assert.equal(
    loadConfig({
      ...BASE,
      AWS_ENDPOINT_URL: "http://127.0.0.1:9",
      AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:8",
    }).dynamodbEndpoint,
    "http://127.0.0.1:8",
  );
});

Deno.test("idempotency config: config: a bad table name or endpoint stops startup with one clear line", () => {
  assert.throws(
    () => loadConfig({ ...BASE, IDEMPOTENCY_TABLE: "a b" }),
    /^ConfigError: Cannot parse IDEMPOTENCY_TABLE: received "a b", expected a DynamoDB table name/,
  );
  assert.throws(
    () => loadConfig({ ...BASE, AWS_ENDPOINT_URL_DYNAMODB: "nope" }),
    /Cannot parse AWS_ENDPOINT_URL_DYNAMODB: received "nope", expected an http\(s\) URL/,
  );
});

Deno.test("idempotency config: metrics: with a table the idempotency series exist at 0 from startup", () => {
  const text = createSluiceMetrics(undefined, { idempotencyTable: true }).registry.render();
  for (
    const line of [
      'sluice_idempotency_requests_total{action="PutItem",result="ok"} 0',
      'sluice_idempotency_requests_total{action="GetItem",result="ConditionalCheckFailedException"} 0',
      'sluice_idempotency_conflicts_total{result="duplicate"} 0',
      "sluice_idempotency_takeovers_total 0",
      'sluice_idempotency_fenced_total{action="complete"} 0',
      "sluice_idempotency_duration_seconds_count 0",
    ]
  ) assert.ok(text.includes(line), line);
});

Deno.test("idempotency config: probeTable: fine or missing, named by its variable", async () => {
  const db = await startDynalite();
  try {
    const env = { ...BASE, AWS_ENDPOINT_URL_DYNAMODB: db.url };
    const config = loadConfig(env);
    const deps = { env, clock: systemClock };
    assert.deepEqual(await probeTable(config, deps, "IDEMPOTENCY_TABLE", db.table), []);
    assert.deepEqual(await probeTable(config, deps, "IDEMPOTENCY_TABLE", "nope-table"), [
      'IDEMPOTENCY_TABLE "nope-table" does not exist',
    ]);
    assert.deepEqual(await probeTable(config, deps, "RATE_LIMIT_TABLE", "nope-table"), [
      'RATE_LIMIT_TABLE "nope-table" does not exist',
    ]);
  } finally {
    await db.close();
  }
});

Deno.test("idempotency config: worker ids: 64 random bits in hex", () => {
  assert.equal(workerIdOf(() => 0), "w-0000000000000000");
  assert.equal(workerIdOf(() => 0.5), "w-8000000080000000");
});
