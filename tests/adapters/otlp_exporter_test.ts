import assert from "node:assert/strict";
import { OtlpExporter, type OtlpExporterOptions } from "../../src/adapters/otlp_exporter.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { globalFetch } from "../../src/lib/guarded_fetch.ts";
import type { SpanData } from "../../src/lib/tracer.ts";
import { startOtlpReceiver } from "../../lab/otlp_receiver.ts";

const TRACE = "0af7651916cd43dd8448eb211c80319c";

function span(i: number, extra: Partial<SpanData> = {}): SpanData {
  return {
    traceId: TRACE,
    spanId: (0x1000 + i).toString(16).padStart(16, "0"),
    parentSpanId: "b7ad6b7169203331",
    traceState: "congo=t61rcWkgMzE",
    name: `span ${i}`,
    kind: 5,
    startMs: 1_735_689_600_000.25,
    endMs: 1_735_689_600_012.5,
    attributes: { "messaging.system": "aws_sqs", "sluice.receive_count": 2, ok: true, r: 0.5 },
    shared: undefined,
    error: undefined,
    links: undefined,
    ...extra,
  };
}

function exporter(url: string, options: Partial<OtlpExporterOptions> = {}) {
  const dropped = { queue_full: 0, export_failed: 0 };
  const errors: unknown[] = [];
  const exp = new OtlpExporter({
    url: `${url}/v1/traces`,
    protocol: "http/protobuf",
    headers: { authorization: "Bearer t0ken" },
    timeoutMs: 2000,
    resource: {
      attributes: { "service.name": "sluice", "deployment.environment": "test" },
      scopeName: "sluice",
      scopeVersion: "1.2.3",
    },
    maxQueueSize: 100,
    maxBatchSize: 10,
    scheduleDelayMs: 20,
    fetch: globalFetch,
    clock: systemClock,
    onDropped: (count, reason) => dropped[reason] += count,
    onError: (error) => errors.push(error),
    ...options,
  });
  return { exp, dropped, errors };
}

for (const protocol of ["http/protobuf", "http/json"] as const) {
  Deno.test(`otlp exporter: ${protocol} decodes with the official OTLP definitions, every field kept`, async () => {
    const receiver = startOtlpReceiver();
    const { exp, dropped } = exporter(receiver.url, { protocol });
    try {
      exp.add(span(1));
      exp.add(span(2, {
        parentSpanId: undefined,
        traceState: undefined,
        kind: 1,
        attributes: {
          long: "é".repeat(300),
          negative: -5,
          short: "café ☕",
          wide: "x".repeat(200),
        },
        error: "dead_lettered: bad event_ts",
        links: [{ traceId: "5759e988bd862e3fe1be46a994272793", spanId: "53995c3f42cd8ad8" }],
      }));
      // Two spans sharing one set of attributes: each carries them beside its own.
      const shared = { attributes: { "messaging.operation.name": "DeleteMessage", n: 7 } };
      exp.add(span(3, { attributes: { own: "three" }, shared }));
      exp.add(span(4, { attributes: {}, shared }));
      await exp.flush();
      const [one, two, three, four] = receiver.spans();
      assert.equal(receiver.spans().length, 4);
      assert.deepEqual(three!.attributes, {
        "messaging.operation.name": "DeleteMessage",
        n: 7,
        own: "three",
      });
      assert.deepEqual(four!.attributes, { "messaging.operation.name": "DeleteMessage", n: 7 });
      assert.equal(
        receiver.exports[0]!.contentType,
        protocol === "http/json" ? "application/json" : "application/x-protobuf",
      );
      assert.deepEqual(receiver.exports[0]!.resource, {
        "service.name": "sluice",
        "deployment.environment": "test",
      });
      assert.deepEqual(receiver.exports[0]!.scope, { name: "sluice", version: "1.2.3" });
      assert.equal(receiver.lastHeaders.authorization, "Bearer t0ken");
      assert.deepEqual(one, {
        traceId: TRACE,
        spanId: "0000000000001001",
        parentSpanId: "b7ad6b7169203331",
        traceState: "congo=t61rcWkgMzE",
        name: "span 1",
        kind: 5,
        startTimeUnixNano: "1735689600000250000",
        endTimeUnixNano: "1735689600012500000",
        attributes: { "messaging.system": "aws_sqs", "sluice.receive_count": 2, ok: true, r: 0.5 },
        links: [],
        status: { code: 0, message: "" },
      });
      assert.equal(two!.parentSpanId, "");
      assert.equal(two!.kind, 1);
      assert.deepEqual(two!.attributes, {
        long: "é".repeat(300),
        negative: -5,
        short: "café ☕",
        wide: "x".repeat(200),
      });
      assert.deepEqual(two!.status, { code: 2, message: "dead_lettered: bad event_ts" });
      assert.deepEqual(two!.links, [{
        traceId: "5759e988bd862e3fe1be46a994272793",
        spanId: "53995c3f42cd8ad8",
      }]);
      assert.deepEqual(dropped, { queue_full: 0, export_failed: 0 });
    } finally {
      exp.close();
      await receiver.close();
    }
  });
}

Deno.test("otlp exporter: a full batch goes out at once, a partial one after the schedule delay", async () => {
  const receiver = startOtlpReceiver();
  const { exp } = exporter(receiver.url, { scheduleDelayMs: 60_000 });
  try {
    for (let i = 0; i < 25; i++) exp.add(span(i));
    const deadline = Date.now() + 5000;
    while (receiver.spans().length < 20 && Date.now() < deadline) await pause(10);
    assert.equal(receiver.spans().length, 20, "two full batches, without waiting for the timer");
    assert.equal(exp.queued, 5);
    await exp.flush();
    assert.equal(receiver.spans().length, 25);
  } finally {
    exp.close();
    await receiver.close();
  }
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("otlp exporter: a stalled receiver never blocks add; the queue stays bounded and drops are counted", async () => {
  const receiver = startOtlpReceiver();
  receiver.mode = "stall";
  const { exp, dropped, errors } = exporter(receiver.url, { maxQueueSize: 30, timeoutMs: 300 });
  try {
    const started = performance.now();
    for (let i = 0; i < 1000; i++) exp.add(span(i));
    assert.ok(performance.now() - started < 200, "add returns at once");
    assert.ok(exp.queued <= 30, `queued ${exp.queued}`);
    // 10 on the wire, 30 held, the rest dropped.
    assert.equal(dropped.queue_full, 960);
    const deadline = Date.now() + 5000;
    while (dropped.export_failed === 0 && Date.now() < deadline) await pause(20);
    assert.equal(dropped.export_failed, 10, "the stalled request timed out; its spans are dropped");
    assert.ok(errors.length >= 1);
    assert.match(String((errors[0] as Error).message), /otlp/);
  } finally {
    exp.close();
    receiver.mode = "ok";
    await receiver.close();
  }
});

Deno.test("otlp exporter: a receiver that is down or failing loses only spans, counted", async () => {
  const receiver = startOtlpReceiver();
  receiver.mode = "fail";
  const failing = exporter(receiver.url);
  const down = exporter("http://127.0.0.1:9"); // discard port: nothing listens
  try {
    for (let i = 0; i < 15; i++) {
      failing.exp.add(span(i));
      down.exp.add(span(i));
    }
    await failing.exp.flush();
    await down.exp.flush();
    assert.equal(failing.dropped.export_failed, 15);
    assert.equal(down.dropped.export_failed, 15);
    assert.match(String((failing.errors[0] as Error).message), /503/);
  } finally {
    failing.exp.close();
    down.exp.close();
    await receiver.close();
  }
});

Deno.test("otlp exporter: flush ends when its signal aborts, with the request on the wire abandoned", async () => {
  const receiver = startOtlpReceiver();
  receiver.mode = "stall";
  const { exp } = exporter(receiver.url, { timeoutMs: 60_000 });
  try {
    exp.add(span(1));
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    const started = performance.now();
    await exp.flush(stop.signal);
    assert.ok(performance.now() - started < 2000);
  } finally {
    exp.close();
    receiver.mode = "ok";
    await receiver.close();
  }
});

Deno.test("otlp exporter: a redirect is not followed, and counts as a failed export", async () => {
  const { serveLocal } = await import("../../lab/local_server.ts");
  const receiver = startOtlpReceiver();
  const redirecting = serveLocal(() =>
    new Response(null, { status: 307, headers: { location: `${receiver.url}/v1/traces` } })
  );
  const { exp, dropped } = exporter(redirecting.url);
  try {
    exp.add(span(1));
    await exp.flush();
    assert.equal(dropped.export_failed, 1);
    assert.equal(receiver.requests, 0, "the Location was never asked");
  } finally {
    exp.close();
    await redirecting.close();
    await receiver.close();
  }
});
