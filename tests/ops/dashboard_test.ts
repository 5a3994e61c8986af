/**
 * ops/grafana/sluice.json is what ops/grafana/dashboard.ts generates, and
 * every panel query is scoped by the `instance` variable.
 */
import assert from "node:assert/strict";
import { buildDashboard, dashboardJson } from "../../ops/grafana/dashboard.ts";
import { REPO } from "../support/command.ts";

interface PanelJson {
  type: string;
  title: string;
  targets?: Array<{ expr?: string }>;
}

Deno.test("dashboard: the committed dashboard JSON equals the generated one", async () => {
  const committed = await Deno.readTextFile(`${REPO}/ops/grafana/sluice.json`);
  assert.ok(
    committed === dashboardJson(),
    "ops/grafana/sluice.json is stale: run `npx -y deno@2.9.6 run -A ops/grafana/dashboard.ts`",
  );
});

Deno.test("dashboard: an instance variable, and every panel query filtered by it", () => {
  const dashboard = buildDashboard() as {
    templating: { list: Array<{ name: string; query?: unknown; includeAll?: boolean }> };
    panels: PanelJson[];
  };
  const instance = dashboard.templating.list.find((v) => v.name === "instance");
  assert.ok(instance, "an instance variable");
  assert.equal(instance.includeAll, true);
  const panels = dashboard.panels.filter((p) => p.type !== "row");
  assert.ok(panels.length >= 18, `${panels.length} panels`);
  for (const panel of panels) {
    assert.ok((panel.targets ?? []).length > 0, `${panel.title} has a query`);
    for (const target of panel.targets ?? []) {
      assert.match(target.expr ?? "", /instance=~"\$instance"/, `${panel.title}: ${target.expr}`);
    }
  }
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? "")).join("\n");
  for (
    const metric of [
      "sluice_messages_total",
      "sluice_message_duration_seconds_bucket",
      "sluice_in_flight",
      "sluice_queue_messages",
      "sluice_message_age_seconds_bucket",
      "sluice_downstream_requests_total",
      "sluice_downstream_duration_seconds_bucket",
      "sluice_breaker_state",
      "sluice_retries_total",
      "sluice_cache_requests_total",
      "sluice_enrich_batch_size",
      "sluice_sqs_requests_total",
      "sluice_dedupe_window_seconds",
      "sluice_build_info",
    ]
  ) assert.ok(exprs.includes(metric), `a panel shows ${metric}`);
});
