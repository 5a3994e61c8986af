import assert from "node:assert/strict";
import { promtoolCheckMetrics } from "../support/command.ts";
import { createSluiceMetrics } from "../../src/domain/sluice_metrics.ts";

Deno.test("sluice metrics: every series with known labels exists at 0 from startup", () => {
  const text = createSluiceMetrics().registry.render();
  const want = [
    'sluice_messages_total{outcome="accepted"} 0',
    'sluice_messages_total{outcome="dead_lettered"} 0',
    'sluice_messages_total{outcome="released"} 0',
    'sluice_messages_total{outcome="rejected_deleted"} 0',
    'sluice_messages_total{outcome="dropped"} 0',
    'sluice_messages_total{outcome="deleted_5xx"} 0',
    'sluice_messages_total{outcome="duplicate"} 0',
    'sluice_retries_total{target="enrichment"} 0',
    'sluice_retries_total{target="validator"} 0',
    'sluice_concurrency_limit{target="enrichment"} 0',
    'sluice_concurrency_limit{target="validator"} 0',
    'sluice_breaker_state{target="enrichment"} 0',
    'sluice_breaker_state{target="validator"} 0',
    'sluice_breaker_state{target="sqs"} 0',
    'sluice_cache_requests_total{result="hit"} 0',
    'sluice_cache_requests_total{result="miss"} 0',
    'sluice_cache_requests_total{result="stale"} 0',
    'sluice_downstream_duration_seconds_count{target="enrichment"} 0',
    'sluice_downstream_duration_seconds_count{target="validator"} 0',
    'sluice_sqs_requests_total{action="ReceiveMessage",result="ok"} 0',
    'sluice_sqs_requests_total{action="ReceiveMessage",result="error"} 0',
    'sluice_sqs_requests_total{action="DeleteMessageBatch",result="error"} 0',
    'sluice_stale_receipts_total{kind="delete"} 0',
    "sluice_in_flight 0",
    "sluice_message_duration_seconds_count 0",
    "sluice_enrich_batch_size_count 0",
  ];
  const lines = new Set(text.split("\n"));
  for (const line of want) assert.ok(lines.has(line), `missing at startup: ${line}`);
});

Deno.test("sluice metrics: sluice_build_info is 1 with version, commit and runtime", () => {
  const metrics = createSluiceMetrics();
  metrics.buildInfo.set({ version: "0.1.0", commit: "abc123", runtime: "deno 2.9.6" }, 1);
  assert.match(
    metrics.registry.render(),
    /\nsluice_build_info\{version="0\.1\.0",commit="abc123",runtime="deno 2\.9\.6"\} 1\n/,
  );
});

Deno.test("sluice metrics: promtool check metrics accepts the registry at startup", async () => {
  const checked = await promtoolCheckMetrics(createSluiceMetrics().registry.render());
  assert.equal(checked.code, 0, `promtool check metrics:\n${checked.out}`);
});

Deno.test("sluice metrics: without an idempotency table no sluice_idempotency_* series is shown", () => {
  const off = createSluiceMetrics(undefined, { idempotencyTable: false });
  off.idempotencyRequests.inc({ action: "PutItem", result: "ok" });
  assert.doesNotMatch(off.registry.render(), /sluice_idempotency_/);
  const on = createSluiceMetrics(undefined, { idempotencyTable: true }).registry.render();
  assert.match(on, /^sluice_idempotency_requests_total\{action="PutItem",result="ok"\} 0$/m);
  assert.match(on, /^sluice_sqs_requests_total\{action="ReceiveMessage",result="error"\} 0$/m);
});
