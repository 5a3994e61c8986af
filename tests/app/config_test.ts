import assert from "node:assert/strict";
import {
  collectConfigProblems,
  type Config,
  CONFIG_VARS,
  exposureWarning,
  ingestUrl,
  isLoopbackHost,
  loadConfig,
} from "../../src/app/config.ts";
import { ConfigError } from "../../src/lib/errors.ts";

const base = {
  SQS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
  ENRICH_URL: "http://10.0.0.5:9102/",
  VALIDATOR_URL: "http://10.0.0.5:9200",
};

function failure(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ ...base, ...env });
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error;
  }
  assert.fail("expected loadConfig to throw");
}

/** The README's defaults, as loadConfig(base) resolves them (URLs normalised). */
const DEFAULTS: Partial<Config> = {
  region: "eu-west-1",
  receiveWaitSeconds: 20,
  maxBatch: 10,
  visibilityTimeoutSeconds: 30,
  deleteOn4xx: false,
  deleteOn5xx: false,
  unknownUserPolicy: "submit",
  maxInFlight: 500,
  enrichConcurrency: 32,
  validatorConcurrency: 64,
  enrichBatchMax: 100,
  enrichBatchWaitMs: 5,
  dedupTtlSeconds: 3600,
  cacheTtlSeconds: 300,
  cacheMaxEntries: 100000,
  httpTimeoutMs: 5000,
  httpHost: "127.0.0.1",
  httpPort: 9400,
  shutdownGraceSeconds: 20,
  logLevel: "info",
  logFormat: "json",
  endpoint: undefined,
  dlqQueueUrl: undefined,
  enrichUrl: "http://10.0.0.5:9102",
  validatorUrl: "http://10.0.0.5:9200/ingest",
};

Deno.test("config: the defaults the README's table shows", () => {
  const c = loadConfig(base);
  for (const [key, value] of Object.entries(DEFAULTS)) {
    assert.equal(c[key as keyof Config], value, key);
  }
});

Deno.test("config: region and endpoint precedence", () => {
  assert.equal(loadConfig({ ...base, AWS_DEFAULT_REGION: "us-west-2" }).region, "us-west-2");
  assert.equal(
    loadConfig({ ...base, AWS_REGION: "ap-south-1", AWS_DEFAULT_REGION: "us-west-2" }).region,
    "ap-south-1",
  );
  const c = loadConfig({
    ...base,
    AWS_ENDPOINT_URL: "http://127.0.0.1:1",
    AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:2",
  });
  assert.equal(c.endpoint, "http://127.0.0.1:2");
  assert.equal(
    loadConfig({ ...base, AWS_ENDPOINT_URL: "http://127.0.0.1:1" }).endpoint,
    "http://127.0.0.1:1",
  );
});

Deno.test("config: a bad value names the variable, the value and what is allowed", () => {
  assert.equal(
    failure({ SQS_MAX_BATCH: "abc" }).message,
    'Cannot parse SQS_MAX_BATCH: received "abc", expected an integer 1-10',
  );
  assert.equal(failure({ SQS_MAX_BATCH: "11" }).variable, "SQS_MAX_BATCH");
  assert.equal(failure({ SQS_RECEIVE_WAIT_SECONDS: "21" }).variable, "SQS_RECEIVE_WAIT_SECONDS");
  assert.equal(failure({ MAX_IN_FLIGHT: "-1" }).variable, "MAX_IN_FLIGHT");
  assert.equal(failure({ MAX_IN_FLIGHT: "1.5" }).variable, "MAX_IN_FLIGHT");
  assert.equal(failure({ ENRICH_URL: "not a url" }).variable, "ENRICH_URL");
  assert.equal(failure({ VALIDATOR_URL: "ftp://x" }).variable, "VALIDATOR_URL");
  assert.equal(failure({ DELETE_ON_4XX: "maybe" }).variable, "DELETE_ON_4XX");
  assert.equal(failure({ UNKNOWN_USER_POLICY: "ignore" }).variable, "UNKNOWN_USER_POLICY");
  assert.equal(failure({ LOG_LEVEL: "trace" }).variable, "LOG_LEVEL");
  assert.equal(failure({ HTTP_PORT: "70000" }).variable, "HTTP_PORT");
  assert.match(failure({ SQS_QUEUE_URL: "" }).message, /^Missing SQS_QUEUE_URL/);
});

Deno.test("config: RATE_LIMIT is unset by default and RATE_LIMIT_KEY defaults to user_id", () => {
  assert.equal(loadConfig(base).rateLimit, undefined);
  assert.deepEqual(loadConfig({ ...base, RATE_LIMIT: "20/1s" }).rateLimit, {
    limit: 20,
    windowMs: 1000,
    key: { kind: "user_id" },
  });
});

const rateRows: Array<[Record<string, string>, Config["rateLimit"]]> = [
  [{ RATE_LIMIT: "600/1m" }, { limit: 600, windowMs: 60_000, key: { kind: "user_id" } }],
  [{ RATE_LIMIT: "1000/1h" }, { limit: 1000, windowMs: 3_600_000, key: { kind: "user_id" } }],
  [{ RATE_LIMIT: "5/250ms" }, { limit: 5, windowMs: 250, key: { kind: "user_id" } }],
  [{ RATE_LIMIT: " 3 / s " }, { limit: 3, windowMs: 1000, key: { kind: "user_id" } }],
  [
    { RATE_LIMIT: "20/1s", RATE_LIMIT_KEY: "message_group" },
    { limit: 20, windowMs: 1000, key: { kind: "message_group" } },
  ],
  [
    { RATE_LIMIT: "20/1s", RATE_LIMIT_KEY: "attribute:tenant" },
    { limit: 20, windowMs: 1000, key: { kind: "attribute", name: "tenant" } },
  ],
];
for (const [env, expected] of rateRows) {
  Deno.test(`config: RATE_LIMIT ${JSON.stringify(env)} is read`, () => {
    assert.deepEqual(loadConfig({ ...base, ...env }).rateLimit, expected);
  });
}

Deno.test("config: a bad RATE_LIMIT or RATE_LIMIT_KEY names the variable, the value and what is allowed", () => {
  assert.equal(
    failure({ RATE_LIMIT: "20 per second" }).message,
    'Cannot parse RATE_LIMIT: received "20 per second", expected N/DURATION: N 1-100000 per a duration up to 12h (20/1s, 600/1m, 1000/1h, 5/250ms)',
  );
  for (const bad of ["0/1s", "20/0s", "20/13h", "200001/1s", "20/1d", "-1/1s", "20"]) {
    assert.equal(failure({ RATE_LIMIT: bad }).variable, "RATE_LIMIT", bad);
  }
  assert.equal(
    failure({ RATE_LIMIT_KEY: "tenant" }).message,
    'Cannot parse RATE_LIMIT_KEY: received "tenant", expected user_id, message_group or attribute:NAME',
  );
  assert.equal(failure({ RATE_LIMIT_KEY: "attribute:" }).variable, "RATE_LIMIT_KEY");
});

Deno.test("config: a FIFO queue is taken; its DLQ_QUEUE_URL must be FIFO too, a standard queue's standard", () => {
  const fifo = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo";
  assert.equal(loadConfig({ ...base, SQS_QUEUE_URL: fifo }).queueUrl, fifo);
  const standardDlq = failure({
    SQS_QUEUE_URL: fifo,
    DLQ_QUEUE_URL: fifo.replace("orders.fifo", "dlq"),
  });
  assert.equal(standardDlq.variable, "DLQ_QUEUE_URL");
  assert.match(standardDlq.message, /expected a FIFO queue/);
  const fifoDlq = failure({
    DLQ_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/d.fifo",
  });
  assert.match(fifoDlq.message, /expected a standard queue/);
});

Deno.test("config: no region anywhere is an error naming AWS_REGION", () => {
  const error = failure({ SQS_QUEUE_URL: "http://127.0.0.1:9324/000000000000/q" });
  assert.equal(error.variable, "AWS_REGION");
});

Deno.test("config: secrets are never echoed", () => {
  const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  const secretVar = CONFIG_VARS.find((v) => v.name === "AWS_SECRET_ACCESS_KEY");
  assert.equal(secretVar?.secret, true);
  // Every error path for a bad value hides secret values.
  const error = failure({ SQS_MAX_BATCH: "x", AWS_SECRET_ACCESS_KEY: secret });
  assert.ok(!error.message.includes(secret));
});

Deno.test("config: booleans and policies accept their spellings", () => {
  const c = loadConfig({
    ...base,
    DELETE_ON_4XX: "TRUE",
    DELETE_ON_5XX: "1",
    UNKNOWN_USER_POLICY: "dead-letter",
    LOG_FORMAT: "pretty",
  });
  assert.equal(c.deleteOn4xx, true);
  assert.equal(c.deleteOn5xx, true);
  assert.equal(c.unknownUserPolicy, "dead-letter");
  assert.equal(c.logFormat, "pretty");
});

Deno.test("config: validator URL given with or without /ingest", () => {
  assert.equal(ingestUrl("http://h:9200"), "http://h:9200/ingest");
  assert.equal(ingestUrl("http://h:9200/"), "http://h:9200/ingest");
  assert.equal(ingestUrl("http://h:9200/ingest"), "http://h:9200/ingest");
  assert.equal(ingestUrl("http://h:9200/ingest/"), "http://h:9200/ingest");
  assert.equal(ingestUrl("http://h:9200/v2/"), "http://h:9200/v2/ingest");
});

Deno.test("config: DLQ_QUEUE_URL equal to SQS_QUEUE_URL is a config error", () => {
  const same = failure({ DLQ_QUEUE_URL: base.SQS_QUEUE_URL });
  assert.equal(same.variable, "DLQ_QUEUE_URL");
  assert.match(
    same.message,
    /^Cannot use DLQ_QUEUE_URL: received ".*orders", expected a queue other than SQS_QUEUE_URL/,
  );
  // A trailing slash or the other endpoint form of the same region is the same queue.
  assert.equal(failure({ DLQ_QUEUE_URL: `${base.SQS_QUEUE_URL}/` }).variable, "DLQ_QUEUE_URL");
  assert.equal(
    loadConfig({ ...base, DLQ_QUEUE_URL: `${base.SQS_QUEUE_URL}-dlq` }).dlqQueueUrl,
    `${base.SQS_QUEUE_URL}-dlq`,
  );
});

Deno.test("config: a plain http:// AWS endpoint off loopback is refused unless AWS_ALLOW_HTTP_ENDPOINT=true", () => {
  for (const name of ["AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL", "SQS_QUEUE_URL"]) {
    const url = name === "SQS_QUEUE_URL"
      ? "http://sqs.eu-west-1.amazonaws.com/123456789012/orders"
      : "http://10.0.0.9:4566";
    const error = failure({ [name]: url });
    assert.equal(error.variable, name);
    assert.match(
      error.message,
      new RegExp(`^Cannot use ${name}: received "http://.*", expected an https:// URL`),
    );
    assert.equal(error.message.includes("\n"), false, "one line");
    assert.doesNotThrow(() =>
      loadConfig({ ...base, [name]: url, AWS_ALLOW_HTTP_ENDPOINT: "true" })
    );
  }
  // Loopback (emulators, the lab) and https stay allowed.
  for (
    const ok of [
      "http://127.0.0.1:4566",
      "http://localhost:4566",
      "http://[::1]:4566",
      "https://10.0.0.9",
    ]
  ) {
    assert.equal(loadConfig({ ...base, AWS_ENDPOINT_URL_SQS: ok }).endpoint, ok);
  }
});

Deno.test("config: HTTP_HOST off loopback gets a warning naming what it exposes", () => {
  assert.equal(exposureWarning(loadConfig(base)), undefined);
  assert.equal(exposureWarning(loadConfig({ ...base, HTTP_HOST: "::1" })), undefined);
  const warning = exposureWarning(
    loadConfig({ ...base, HTTP_HOST: "10.0.0.7", HTTP_PORT: "9400" }),
  );
  assert.match(
    warning ?? "",
    /HTTP_HOST=10\.0\.0\.7 .*\/metrics, \/healthz and \/readyz .* on 10\.0\.0\.7:9400/,
  );
  assert.match(
    exposureWarning(loadConfig({ ...base, HTTP_HOST: "0.0.0.0" })) ?? "",
    /0\.0\.0\.0:9400/,
  );
});

Deno.test("config: LOG_LEVEL aliases other tools use are accepted", () => {
  for (
    const [raw, level] of [["warning", "warn"], ["WARNING", "warn"], ["information", "info"], [
      "err",
      "error",
    ], ["warn", "warn"]]
  ) {
    assert.equal(loadConfig({ ...base, LOG_LEVEL: raw! }).logLevel, level, raw);
  }
});

Deno.test("config: collectConfigProblems names every problem at once, loadConfig only the first", () => {
  const { config, problems } = collectConfigProblems({ SQS_MAX_BATCH: "abc", HTTP_PORT: "x" });
  assert.equal(config, undefined);
  assert.deepEqual(problems.map((p) => p.split(":")[0]), [
    "Missing SQS_QUEUE_URL",
    "Cannot parse SQS_MAX_BATCH",
    "Missing ENRICH_URL",
    "Missing VALIDATOR_URL",
    "Cannot parse HTTP_PORT",
  ]);
  assert.throws(() => loadConfig({ SQS_MAX_BATCH: "abc" }), (e: Error) => {
    return e instanceof ConfigError && e.variable === "SQS_QUEUE_URL";
  });
  const ok = collectConfigProblems(base);
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.config?.queueUrl, loadConfig(base).queueUrl);
});

Deno.test("config: loopback is localhost, 127.0.0.0/8 and ::1 literally, never a *.localhost name", () => {
  const rows: Array<[string, boolean]> = [
    ["localhost", true],
    ["LOCALHOST", true],
    ["127.0.0.1", true],
    ["127.255.3.4", true],
    ["::1", true],
    ["[::1]", true],
    ["sqs.us-east-1.localhost", false],
    ["evil.localhost", false],
    ["localhost.example.com", false],
    ["128.0.0.1", false],
    ["10.0.0.9", false],
    ["::ffff:7f00:1", false],
  ];
  for (const [host, loopback] of rows) assert.equal(isLoopbackHost(host), loopback, host);
});

Deno.test("config: a plain http:// DynamoDB endpoint off loopback is refused like an SQS one", () => {
  const table = { IDEMPOTENCY_TABLE: "sluice-dedupe" };
  const error = failure({ ...table, AWS_ENDPOINT_URL_DYNAMODB: "http://dynamo.example.com" });
  assert.equal(error.variable, "AWS_ENDPOINT_URL_DYNAMODB");
  assert.match(
    error.message,
    /^Cannot use AWS_ENDPOINT_URL_DYNAMODB: received "http:\/\/dynamo\.example\.com", expected an https:\/\/ URL/,
  );
  assert.equal(
    failure({ AWS_ENDPOINT_URL_DYNAMODB: "http://dynamo.localhost:8000" }).variable,
    "AWS_ENDPOINT_URL_DYNAMODB",
    "refused with no table set too: the variable is wrong either way",
  );
  for (
    const ok of ["http://127.0.0.1:8000", "http://localhost:8000", "https://dynamo.example.com"]
  ) {
    assert.equal(
      loadConfig({ ...base, ...table, AWS_ENDPOINT_URL_DYNAMODB: ok }).dynamodbEndpoint,
      ok,
    );
  }
  const allowed = loadConfig({
    ...base,
    AWS_ENDPOINT_URL_DYNAMODB: "http://dynamo.example.com",
    AWS_ALLOW_HTTP_ENDPOINT: "true",
  });
  assert.equal(allowed.dynamodbEndpoint, "http://dynamo.example.com");
});

Deno.test("config: a *.localhost endpoint is not loopback; the queue URL's host counts only when it is the endpoint", () => {
  for (const name of ["AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"]) {
    assert.equal(failure({ [name]: "http://sqs.us-east-1.localhost:4566" }).variable, name);
  }
  const emulatorQueue = "http://sqs.us-east-1.localhost:4566/000000000000/q";
  assert.equal(failure({ SQS_QUEUE_URL: emulatorQueue }).variable, "SQS_QUEUE_URL");
  // With an endpoint override the queue URL's host is never contacted (fauxqs, the lab).
  const c = loadConfig({
    ...base,
    SQS_QUEUE_URL: emulatorQueue,
    AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:4566",
  });
  assert.equal(c.endpoint, "http://127.0.0.1:4566");
});

const URL_VARIABLES = CONFIG_VARS.filter((v) => v.expected === "an http(s) URL").map((v) => v.name);

Deno.test("config: a URL with user:password@ is refused for every URL variable, the password never shown", () => {
  assert.deepEqual(URL_VARIABLES, [
    "SQS_QUEUE_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_S3",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "DLQ_QUEUE_URL",
    "ENRICH_URL",
    "VALIDATOR_URL",
  ]);
  for (const name of URL_VARIABLES) {
    for (
      const value of [
        "https://sluice:hunter2secret@api.example/v1",
        "https://hunter2secret@x.example",
      ]
    ) {
      const error = failure({ [name]: value });
      assert.equal(error.variable, name);
      assert.match(
        error.message,
        new RegExp(
          `^Cannot use ${name}: received "https://<hidden>@[a-z.]+.*", expected a URL without user:password@`,
        ),
      );
      assert.equal(error.message.includes("hunter2secret"), false, error.message);
      assert.equal(error.message.includes("\n"), false, "one line");
      const { problems } = collectConfigProblems({ ...base, [name]: value });
      assert.equal(problems.length, 1, problems.join("\n"));
      assert.equal(problems[0]!.includes("hunter2secret"), false);
    }
  }
  // A value that is no URL at all is shown without what looks like its userinfo either.
  const broken = failure({ ENRICH_URL: "https://user:hunter2secret@[bad" });
  assert.match(broken.message, /^Cannot parse ENRICH_URL: received "https:\/\/<hidden>@\[bad"/);
});

Deno.test("config: booleans take on/off as well as true/false, yes/no and 1/0, and the error lists them all", () => {
  for (
    const [text, value] of [["on", true], ["OFF", false], ["yes", true], ["0", false]] as const
  ) {
    assert.equal(loadConfig({ ...base, DELETE_ON_4XX: text }).deleteOn4xx, value, text);
  }
  assert.equal(
    failure({ DELETE_ON_5XX: "maybe" }).message,
    'Cannot parse DELETE_ON_5XX: received "maybe", expected true or false (or yes/no, on/off, 1/0)',
  );
});

Deno.test("config: RATE_LIMIT_TABLE is read beside RATE_LIMIT, and refused without it", () => {
  assert.equal(loadConfig(base).rateLimitTable, undefined);
  const env = { ...base, RATE_LIMIT: "20/1s", RATE_LIMIT_TABLE: "sluice-rates" };
  assert.equal(loadConfig(env).rateLimitTable, "sluice-rates");
  assert.equal(
    failure({ RATE_LIMIT_TABLE: "sluice-rates" }).message,
    'Cannot use RATE_LIMIT_TABLE: received "sluice-rates", expected RATE_LIMIT to be set too (the table holds the fleet\'s count of that limit)',
  );
  assert.equal(
    failure({ RATE_LIMIT: "20/1s", RATE_LIMIT_TABLE: "x" }).variable,
    "RATE_LIMIT_TABLE",
  );
});
