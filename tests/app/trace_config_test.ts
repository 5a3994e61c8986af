import assert from "node:assert/strict";
import { loadConfig } from "../../src/app/config.ts";
import { parseKeyValueList, tracesUrlOf } from "../../src/app/trace_config.ts";
import { ConfigError } from "../../src/lib/errors.ts";

const BASE = {
  SQS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
  ENRICH_URL: "http://127.0.0.1:9101",
  VALIDATOR_URL: "http://127.0.0.1:9102",
};

Deno.test("trace config: unset, nothing is exported and the defaults are the specification's", () => {
  const { trace } = loadConfig(BASE);
  assert.deepEqual(trace, {
    tracesUrl: undefined,
    protocol: "http/protobuf",
    headers: {},
    timeoutMs: 10_000,
    serviceName: "sluice",
    resourceAttributes: {},
    sampler: "parentbased_always_on",
    samplerRatio: 1,
    maxQueueSize: 2048,
    maxBatchSize: 512,
    scheduleDelayMs: 5000,
  });
});

Deno.test("trace config: the traces URL is {endpoint}/v1/traces, or the traces endpoint as given", () => {
  assert.equal(tracesUrlOf("http://collector:4318"), "http://collector:4318/v1/traces");
  assert.equal(tracesUrlOf("http://collector:4318/otlp/"), "http://collector:4318/otlp/v1/traces");
  const both = loadConfig({
    ...BASE,
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://tempo:4318/custom",
  });
  assert.equal(both.trace.tracesUrl, "http://tempo:4318/custom");
});

Deno.test("trace config: headers and resource attributes are key=value lists, values percent-decoded", () => {
  assert.deepEqual(parseKeyValueList("authorization=Basic%20abc, x-team = core "), {
    authorization: "Basic abc",
    "x-team": "core",
  });
  assert.equal(parseKeyValueList("novalue"), undefined);
  assert.equal(parseKeyValueList("=v"), undefined);
  const c = loadConfig({
    ...BASE,
    OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod,host.name=vm%2D1",
    OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
    OTEL_TRACES_SAMPLER_ARG: "0.25",
  });
  assert.deepEqual(c.trace.resourceAttributes, {
    "deployment.environment": "prod",
    "host.name": "vm-1",
  });
  assert.equal(c.trace.sampler, "parentbased_traceidratio");
  assert.equal(c.trace.samplerRatio, 0.25);
});

Deno.test("trace config: a bad value stops startup with one line; the headers are never shown", () => {
  const rows: Array<[Record<string, string>, RegExp]> = [
    [
      { OTEL_TRACES_SAMPLER: "jaeger_remote" },
      /^Cannot parse OTEL_TRACES_SAMPLER: received "jaeger_remote", expected always_on, /,
    ],
    [
      { OTEL_TRACES_SAMPLER_ARG: "1.5" },
      /OTEL_TRACES_SAMPLER_ARG: received "1.5", expected a number 0-1/,
    ],
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }, /OTEL_EXPORTER_OTLP_PROTOCOL: received "grpc"/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, /OTEL_EXPORTER_OTLP_ENDPOINT/],
    [
      { OTEL_EXPORTER_OTLP_HEADERS: "api-key" },
      /^Cannot parse OTEL_EXPORTER_OTLP_HEADERS: received <hidden>/,
    ],
  ];
  for (const [env, message] of rows) {
    const error = (() => {
      try {
        loadConfig({ ...BASE, ...env });
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof ConfigError, JSON.stringify(env));
    assert.match(error.message, message);
  }
});
