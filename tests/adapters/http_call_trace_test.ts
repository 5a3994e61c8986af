import assert from "node:assert/strict";
import { httpCall, type HttpCallOptions } from "../../src/adapters/http_call.ts";
import { SPAN_KIND, type SpanData } from "../../src/lib/tracer.ts";
import { recordingTracer } from "../support/trace_kit.ts";

/** A span's own attributes and its shared ones, as an exporter sends them. */
function attributesOf(span: SpanData) {
  return { ...span.shared?.attributes, ...span.attributes };
}

Deno.test("http call: a recorded request is a client span with its method, URL, status and traceparent", async () => {
  const { clock, added, tracer } = recordingTracer();
  const headers: Array<string | null> = [];
  const statuses = [200, 200, 503];
  const options: HttpCallOptions = {
    target: "validator",
    timeoutMs: 1000,
    clock,
    fetch: ((_url: string, init: RequestInit) => {
      headers.push(new Headers(init.headers).get("traceparent"));
      return Promise.resolve(new Response("{}", { status: statuses[headers.length - 1]! }));
    }) as typeof fetch,
  };
  const message = tracer.begin(undefined, "q process", SPAN_KIND.consumer);
  for (const url of ["http://127.0.0.1:9/a", "http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]) {
    await httpCall(options, url, { method: "POST", body: "{}" }, undefined, message);
  }
  assert.equal(added.length, 3);
  const [first, second, third] = added;
  assert.deepEqual(attributesOf(first!), {
    "http.request.method": "POST",
    "url.full": "http://127.0.0.1:9/a",
    "http.response.status_code": 200,
  });
  assert.deepEqual(attributesOf(second!), attributesOf(first!));
  assert.deepEqual(attributesOf(third!), {
    "http.request.method": "POST",
    "url.full": "http://127.0.0.1:9/b",
    "http.response.status_code": 503,
    "error.type": "503",
  });
  assert.equal(third!.error, "POST http://127.0.0.1:9/b: 503");
  for (const [i, span] of added.entries()) {
    assert.equal(span.name, "POST validator");
    assert.equal(span.kind, SPAN_KIND.client);
    assert.equal(span.traceId, message.traceId);
    assert.equal(span.parentSpanId, message.spanId);
    assert.equal(headers[i], `00-${message.traceId}-${span.spanId}-01`);
  }
  assert.notEqual(first!.spanId, second!.spanId);
});
