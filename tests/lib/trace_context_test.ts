import assert from "node:assert/strict";
import {
  incomingContext,
  newTraceparent,
  parseAwsTraceHeader,
  parseTraceparent,
  spanIdOf,
  traceIdOf,
  unsampled,
} from "../../src/lib/trace_context.ts";
import { createSampler } from "../../src/lib/trace_sampler.ts";

const T = "0af7651916cd43dd8448eb211c80319c";
const S = "b7ad6b7169203331";

Deno.test("trace context: a valid traceparent gives its trace id, parent and sampled flag", () => {
  assert.deepEqual(parseTraceparent(`00-${T}-${S}-01`, "congo=t61rcWkgMzE"), {
    traceId: T,
    spanId: S,
    sampled: true,
    traceState: "congo=t61rcWkgMzE",
  });
  assert.equal(parseTraceparent(`00-${T}-${S}-00`)?.sampled, false);
  // A later version is read by its first four fields, and may carry more.
  assert.equal(parseTraceparent(`01-${T}-${S}-01-extra`)?.traceId, T);
});

Deno.test("trace context: an invalid traceparent is no context", () => {
  const rows: Array<[string, string | undefined]> = [
    ["missing", undefined],
    ["empty", ""],
    ["garbage", "not a traceparent at all, but long enough to pass the length check"],
    ["uppercase hex", `00-${T.toUpperCase()}-${S}-01`],
    ["all-zero trace id", `00-${"0".repeat(32)}-${S}-01`],
    ["all-zero parent id", `00-${T}-${"0".repeat(16)}-01`],
    ["version ff", `ff-${T}-${S}-01`],
    ["version 00 with more fields", `00-${T}-${S}-01-extra`],
    ["short trace id", `00-${T.slice(2)}-${S}-01`],
    ["non-hex flags", `00-${T}-${S}-zz`],
  ];
  for (const [what, value] of rows) assert.equal(parseTraceparent(value), undefined, what);
});

Deno.test("trace context: an X-Ray header gives the root as trace id and Parent as parent span", () => {
  const header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
  assert.deepEqual(parseAwsTraceHeader(header), {
    traceId: "5759e988bd862e3fe1be46a994272793",
    spanId: "53995c3f42cd8ad8",
    sampled: true,
  });
  assert.equal(parseAwsTraceHeader(header.replace("Sampled=1", "Sampled=0"))?.sampled, false);
  assert.equal(parseAwsTraceHeader(header.replace("Sampled=1", "Sampled=?"))?.sampled, undefined);
  // Order and extra fields (Lineage, Self) do not matter.
  assert.equal(
    parseAwsTraceHeader(`Sampled=1;Lineage=a:0;Root=1-5759e988-bd862e3fe1be46a994272793`)?.traceId,
    "5759e988bd862e3fe1be46a994272793",
  );
});

Deno.test("trace context: an invalid X-Ray header is no context", () => {
  for (
    const value of [
      "",
      "Parent=53995c3f42cd8ad8;Sampled=1",
      "Root=2-5759e988-bd862e3fe1be46a994272793",
      "Root=1-5759e988-bd862e3fe1be46a99427279",
      "Root=1-zzzze988-bd862e3fe1be46a994272793",
      "Root=1-00000000-000000000000000000000000",
    ]
  ) assert.equal(parseAwsTraceHeader(value), undefined, value);
  // A bad Parent keeps the trace, without a parent span.
  assert.equal(
    parseAwsTraceHeader("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=xyz")?.spanId,
    undefined,
  );
});

Deno.test("trace context: traceparent wins over AWSTraceHeader; an invalid one falls through", () => {
  const xray = { AWSTraceHeader: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1" };
  const w3c = { traceparent: { StringValue: `00-${T}-${S}-01` } };
  assert.equal(incomingContext(w3c, xray)?.traceId, T);
  const bad = { traceparent: { StringValue: "00-garbage" } };
  assert.equal(incomingContext(bad, xray)?.traceId, "5759e988bd862e3fe1be46a994272793");
  assert.equal(incomingContext(bad, {}), undefined);
  assert.equal(incomingContext({}, {}), undefined);
});

Deno.test("trace context: an SNS envelope's traceparent comes last, after AWSTraceHeader", () => {
  const xray = { AWSTraceHeader: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1" };
  const envelope = { traceparent: { StringValue: `00-${T}-${S}-01` } };
  const own = { traceparent: { StringValue: `00-${"a".repeat(32)}-${S}-01` } };
  assert.equal(incomingContext({}, {}, envelope)?.traceId, T);
  assert.equal(incomingContext({}, xray, envelope)?.traceId, "5759e988bd862e3fe1be46a994272793");
  assert.equal(incomingContext(own, xray, envelope)?.traceId, "a".repeat(32));
  const bad = { traceparent: { StringValue: "00-garbage" } };
  assert.equal(incomingContext(bad, {}, envelope)?.traceId, T, "an invalid one falls through");
  assert.equal(incomingContext({}, {}, bad), undefined);
});

Deno.test("trace context: ids come from the injected random source, formatted as W3C wants", () => {
  const draws = [0, 0.5, 0.25, 0.75];
  let i = 0;
  const random = () => draws[i++ % draws.length]!;
  const fresh = newTraceparent(random);
  assert.equal(fresh, "00-0000000080000000" + "40000000c0000000-0000000080000000-01");
  assert.equal(traceIdOf(fresh), "0000000080000000" + "40000000c0000000");
  assert.equal(spanIdOf(fresh), "0000000080000000");
  // In a given trace only the span id is drawn; unsampled clears the flag.
  assert.equal(unsampled(newTraceparent(random, T)), `00-${T}-40000000c0000000-00`);
  assert.equal(unsampled(`00-${T}-${S}-01`), `00-${T}-${S}-00`);
  // A draw of all zeros is never an id; the next draw overwrites every digit of the last.
  const zeros = newTraceparent(() => 0);
  assert.equal(zeros, `00-${"0".repeat(31)}1-${"0".repeat(15)}1-01`);
  assert.equal(newTraceparent(() => 1 - 2 ** -33, T), `00-${T}-ffffffffffffffff-01`);
  assert.equal(parseTraceparent(zeros)?.traceId, "0".repeat(31) + "1");
});

Deno.test("trace context: samplers follow the OpenTelemetry definitions", () => {
  const low = "00000000000000000000000000000001";
  const high = "0000000000000000ffffffffffffffff";
  const rows: Array<[Parameters<typeof createSampler>, string, boolean | undefined, boolean]> = [
    [["always_on"], high, false, true],
    [["always_off"], low, true, false],
    [["traceidratio", 0.5], low, undefined, true],
    [["traceidratio", 0.5], high, undefined, false],
    [["traceidratio", 0], low, true, false],
    [["traceidratio", 1], high, undefined, true],
    [["parentbased_always_on"], low, false, false],
    [["parentbased_always_on"], low, undefined, true],
    [["parentbased_always_off"], low, true, true],
    [["parentbased_always_off"], low, undefined, false],
    [["parentbased_traceidratio", 0.5], high, true, true],
    [["parentbased_traceidratio", 0.5], high, undefined, false],
  ];
  for (const [args, traceId, parent, expected] of rows) {
    assert.equal(createSampler(...args)(traceId, parent), expected, `${args} ${traceId} ${parent}`);
  }
});
