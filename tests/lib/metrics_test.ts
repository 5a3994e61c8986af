import assert from "node:assert/strict";
import { DEFAULT_BUCKETS, Registry } from "../../src/lib/metrics.ts";

Deno.test("metrics: counter renders HELP, TYPE and one line per label set", () => {
  const r = new Registry();
  const c = r.counter("sluice_messages_total", "Messages by final outcome.", ["outcome"]);
  c.inc({ outcome: "accepted" });
  c.inc({ outcome: "accepted" }, 2);
  c.inc({ outcome: "released" });
  assert.equal(c.get({ outcome: "accepted" }), 3);
  assert.equal(c.get({ outcome: "dropped" }), 0);
  assert.equal(
    r.render(),
    [
      "# HELP sluice_messages_total Messages by final outcome.",
      "# TYPE sluice_messages_total counter",
      'sluice_messages_total{outcome="accepted"} 3',
      'sluice_messages_total{outcome="released"} 1',
      "",
    ].join("\n"),
  );
});

Deno.test("metrics: counter refuses to go down", () => {
  const c = new Registry().counter("c_total", "c");
  assert.throws(() => c.inc(undefined, -1), RangeError);
  assert.equal(c.get(), 0);
});

Deno.test("metrics: a metric without labels renders 0 before its first update", () => {
  const r = new Registry();
  r.counter("a_total", "A.");
  r.gauge("b", "B.");
  assert.equal(
    r.render(),
    "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n# HELP b B.\n# TYPE b gauge\nb 0\n",
  );
});

Deno.test("metrics: gauge set, inc and dec, with labels in declared order", () => {
  const r = new Registry();
  const g = r.gauge("sluice_queue_messages", "Queue depth.", ["queue", "state"]);
  g.set({ state: "visible", queue: "main" }, 10);
  g.inc({ queue: "main", state: "visible" }, 5);
  g.dec({ queue: "main", state: "visible" });
  g.inc({ queue: "dlq", state: "in_flight" });
  g.set({ queue: "x", state: "y" }, -Infinity);
  assert.equal(g.get({ queue: "main", state: "visible" }), 14);
  assert.equal(
    r.render(),
    [
      "# HELP sluice_queue_messages Queue depth.",
      "# TYPE sluice_queue_messages gauge",
      'sluice_queue_messages{queue="main",state="visible"} 14',
      'sluice_queue_messages{queue="dlq",state="in_flight"} 1',
      'sluice_queue_messages{queue="x",state="y"} -Inf',
      "",
    ].join("\n"),
  );
});

Deno.test("metrics: histogram renders cumulative buckets, +Inf, sum and count per label set", () => {
  const r = new Registry();
  const h = r.histogram("sluice_downstream_duration_seconds", "Latency.", ["target"], [
    0.1,
    0.5,
    1,
  ]);
  h.observe({ target: "enrichment" }, 0.05);
  h.observe({ target: "enrichment" }, 0.1); // le is inclusive
  h.observe({ target: "enrichment" }, 0.7);
  h.observe({ target: "enrichment" }, 3);
  h.observe({ target: "validator" }, 0.2);
  assert.equal(h.count({ target: "enrichment" }), 4);
  assert.equal(h.sum({ target: "enrichment" }), 3.85);
  assert.equal(h.count({ target: "other" }), 0);
  assert.equal(
    r.render(),
    [
      "# HELP sluice_downstream_duration_seconds Latency.",
      "# TYPE sluice_downstream_duration_seconds histogram",
      'sluice_downstream_duration_seconds_bucket{target="enrichment",le="0.1"} 2',
      'sluice_downstream_duration_seconds_bucket{target="enrichment",le="0.5"} 2',
      'sluice_downstream_duration_seconds_bucket{target="enrichment",le="1"} 3',
      'sluice_downstream_duration_seconds_bucket{target="enrichment",le="+Inf"} 4',
      'sluice_downstream_duration_seconds_sum{target="enrichment"} 3.85',
      'sluice_downstream_duration_seconds_count{target="enrichment"} 4',
      'sluice_downstream_duration_seconds_bucket{target="validator",le="0.1"} 0',
      'sluice_downstream_duration_seconds_bucket{target="validator",le="0.5"} 1',
      'sluice_downstream_duration_seconds_bucket{target="validator",le="1"} 1',
      'sluice_downstream_duration_seconds_bucket{target="validator",le="+Inf"} 1',
      'sluice_downstream_duration_seconds_sum{target="validator"} 0.2',
      'sluice_downstream_duration_seconds_count{target="validator"} 1',
      "",
    ].join("\n"),
  );
});

Deno.test("metrics: histogram without labels uses DEFAULT_BUCKETS", () => {
  const r = new Registry();
  const h = r.histogram("d_seconds", "D.");
  h.observe(undefined, 0.3);
  const lines = r.render().split("\n");
  const buckets = lines.filter((l) => l.startsWith("d_seconds_bucket"));
  assert.equal(buckets.length, DEFAULT_BUCKETS.length + 1);
  assert.equal(buckets[0], 'd_seconds_bucket{le="0.005"} 0');
  assert.ok(lines.includes('d_seconds_bucket{le="0.5"} 1'));
  assert.ok(lines.includes('d_seconds_bucket{le="+Inf"} 1'));
  assert.ok(lines.includes("d_seconds_sum 0.3"));
  assert.ok(lines.includes("d_seconds_count 1"));
});

Deno.test("metrics: label values escape backslash, double quote and newline; HELP escapes too", () => {
  const r = new Registry();
  const c = r.counter("esc_total", 'Back\\slash "quoted"\nnext', ["v"]);
  c.inc({ v: 'a\\b"c\nd' });
  assert.equal(
    r.render(),
    [
      '# HELP esc_total Back\\\\slash "quoted"\\nnext',
      "# TYPE esc_total counter",
      'esc_total{v="a\\\\b\\"c\\nd"} 1',
      "",
    ].join("\n"),
  );
});

Deno.test("metrics: registering the same name twice throws", () => {
  const r = new Registry();
  r.counter("x_total", "x");
  assert.throws(() => r.counter("x_total", "again"), /already registered/);
  assert.throws(() => r.gauge("x_total", "as gauge"), /already registered/);
  assert.throws(() => r.histogram("x_total", "as histogram"), /already registered/);
});

Deno.test("metrics: invalid metric names, label names and buckets throw", () => {
  const r = new Registry();
  assert.throws(() => r.counter("1bad", "x"), /Cannot register metric: received the name "1bad"/);
  assert.throws(
    () => r.counter("ok_total", "x", ["bad-label"]),
    /received the label name "bad-label"/,
  );
  assert.throws(() => r.counter("ok2_total", "x", ["9a"]), /received the label name "9a"/);
  assert.throws(() => r.counter("ok3_total", "x", ["a", "a"]), /a label name twice/);
  assert.throws(() => r.histogram("h1", "x", ["le"]), /received the label "le"/);
  assert.throws(() => r.histogram("h2", "x", [], [1, 0.5]), /ascending/);
  assert.throws(() => r.histogram("h3", "x", [], [1, 1]), /ascending/);
  assert.doesNotThrow(() => r.histogram("h4", "x", [], [1, 2, Infinity]));
});

Deno.test("metrics: labels must match the declared names exactly", () => {
  const r = new Registry();
  const c = r.counter("l_total", "x", ["a"]);
  assert.throws(() => c.inc(), /received \[\], expected \[a\]/);
  assert.throws(() => c.inc({ b: "1" }), /Cannot use the labels of metric/);
  assert.throws(() => c.inc({ a: "1", b: "2" }), /Cannot use the labels of metric/);
  const plain = r.counter("p_total", "x");
  assert.throws(() => plain.inc({ a: "1" }), /Cannot use the labels of metric/);
});

Deno.test("metrics: onCollect callbacks run before each render", () => {
  const r = new Registry();
  const g = r.gauge("process_resident_memory_bytes", "RSS.");
  let rss = 100;
  r.onCollect(() => g.set(undefined, rss));
  assert.match(r.render(), /^process_resident_memory_bytes 100$/m);
  rss = 200;
  assert.match(r.render(), /^process_resident_memory_bytes 200$/m);
});

Deno.test("metrics: an empty registry renders an empty string", () => {
  assert.equal(new Registry().render(), "");
});

Deno.test("metrics: init creates a labelled series at 0 before its first update", () => {
  const r = new Registry();
  const c = r.counter("retries_total", "r", ["target"]);
  const g = r.gauge("limit", "l", ["target"]);
  const h = r.histogram("d_seconds", "d", ["target"], [1]);
  c.init({ target: "validator" });
  g.init({ target: "validator" });
  h.init({ target: "validator" });
  c.init({ target: "validator" }); // a second init changes nothing
  c.inc({ target: "validator" });
  c.init({ target: "validator" });
  assert.deepEqual(r.render().split("\n").filter((l) => !l.startsWith("#")), [
    'retries_total{target="validator"} 1',
    'limit{target="validator"} 0',
    'd_seconds_bucket{target="validator",le="1"} 0',
    'd_seconds_bucket{target="validator",le="+Inf"} 0',
    'd_seconds_sum{target="validator"} 0',
    'd_seconds_count{target="validator"} 0',
    "",
  ]);
  assert.throws(() => c.init({ wrong: "x" }), /received \[wrong\], expected \[target\]/);
});

Deno.test("metrics: observedCounter renders the value read at scrape time as a counter", () => {
  const r = new Registry();
  let cpu = 1.5;
  r.observedCounter("process_cpu_seconds_total", "CPU seconds.", () => cpu);
  assert.match(
    r.render(),
    /# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\.5\n/,
  );
  cpu = 2.25;
  assert.match(r.render(), /process_cpu_seconds_total 2\.25\n/);
  assert.throws(() => r.observedCounter("process_cpu_seconds_total", "again", () => 0), /already/);
});

Deno.test("metrics: label sets that join to the same text stay separate series", () => {
  const r = new Registry();
  const c = r.counter("sluice_x_total", "X.", ["a", "b"]);
  c.inc({ a: "p\u0000q", b: "r" });
  c.inc({ a: "p", b: "q\u0000r" }, 5);
  assert.equal(c.get({ a: "p\u0000q", b: "r" }), 1);
  assert.equal(c.get({ a: "p", b: "q\u0000r" }), 5);
  assert.equal(c.get({ a: "p", b: "q" }), 0);
  assert.equal(r.render().split("\n").filter((l) => l.startsWith("sluice_x_total{")).length, 2);
});
