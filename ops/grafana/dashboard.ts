/**
 * The sluice Grafana dashboard, generated with @grafana/grafana-foundation-sdk
 * so that each panel is a few readable lines. `sluice.json` next to this file
 * is its output (tests/ops/dashboard_test.ts checks they agree):
 *
 *   npx -y deno@2.9.6 run -A ops/grafana/dashboard.ts   # rewrites ops/grafana/sluice.json
 *
 * Every query is filtered by the `instance` variable (one student VM, several,
 * or all), so one dashboard serves a whole class.
 */
import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  MappingType,
  type Panel,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
} from "@grafana/grafana-foundation-sdk/dashboard";
import type { Builder } from "@grafana/grafana-foundation-sdk/cog";
import { DataqueryBuilder, PromQueryFormat } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TablePanel } from "@grafana/grafana-foundation-sdk/table";
import { PanelBuilder as StateTimelinePanel } from "@grafana/grafana-foundation-sdk/statetimeline";

const DATASOURCE = { type: "prometheus", uid: "${datasource}" };
/** The instance filter every query carries. */
const I = 'instance=~"$instance"';
const RATE = "$__rate_interval";

/** A Prometheus query with a legend. */
function q(expr: string, legend = ""): DataqueryBuilder {
  return new DataqueryBuilder().datasource(DATASOURCE).expr(expr).legendFormat(legend);
}

/** A time series panel of `w` grid columns (of 24) with its queries. */
function graph(title: string, unit: string, queries: DataqueryBuilder[], w = 8): TimeseriesPanel {
  return new TimeseriesPanel()
    .title(title)
    .datasource(DATASOURCE)
    .unit(unit)
    .span(w)
    .height(8)
    .targets(queries);
}

function quantile(metric: string, q99: number, by: string): string {
  return `histogram_quantile(${q99}, sum by (${by}) (rate(${metric}_bucket{${I}}[${RATE}])))`;
}

function throughputRow(): Array<Builder<Panel>> {
  return [
    graph("Messages by outcome", "ops", [
      q(`sum by (outcome) (rate(sluice_messages_total{${I}}[${RATE}]))`, "{{outcome}}"),
    ]).description("Final outcomes per second: accepted, duplicate, dead_lettered, released, ..."),
    graph("Receive → final latency", "s", [
      q(quantile("sluice_message_duration_seconds", 0.5, "le"), "p50"),
      q(quantile("sluice_message_duration_seconds", 0.99, "le"), "p99"),
    ]).description("From the worker's receive to the message's final outcome."),
    graph("In flight", "short", [
      q(`sum by (instance) (sluice_in_flight{${I}})`, "{{instance}}"),
    ]).description("Messages between receive and settle, per worker."),
  ];
}

function queueRow(): Array<Builder<Panel>> {
  return [
    graph("Queue depth", "short", [
      q(
        `max by (queue, state) (sluice_queue_messages{${I}})`,
        "{{queue}} {{state}}",
      ),
    ], 12).description(
      "ApproximateNumberOfMessages (visible) and NotVisible (in_flight), every 30 s.",
    ),
    graph("Age of the oldest messages", "s", [
      q(quantile("sluice_message_age_seconds", 0.5, "le"), "p50"),
      q(quantile("sluice_message_age_seconds", 0.99, "le"), "p99"),
      q(quantile("sluice_message_age_seconds", 1, "le"), "max (bucket bound)"),
    ], 12).description(
      "SentTimestamp → final outcome: how far behind the producer the worker runs.",
    ),
  ];
}

function downstreamRow(): Array<Builder<Panel>> {
  const requests = `sluice_downstream_requests_total{${I}}`;
  return [
    graph("Downstream requests by code", "reqps", [
      q(`sum by (target, code) (rate(${requests}[${RATE}]))`, "{{target}} {{code}}"),
    ]),
    graph("Downstream errors (non-2xx)", "reqps", [
      // "or ... * 0" keeps a 0 line per target while there are no errors.
      q(
        `sum by (target) (rate(sluice_downstream_requests_total{${I},code!~"2.."}[${RATE}]))` +
          ` or sum by (target) (rate(${requests}[${RATE}])) * 0`,
        "{{target}}",
      ),
    ]),
    graph("Downstream latency", "s", [
      q(quantile("sluice_downstream_duration_seconds", 0.5, "target, le"), "{{target}} p50"),
      q(quantile("sluice_downstream_duration_seconds", 0.99, "target, le"), "{{target}} p99"),
    ]),
    new StateTimelinePanel()
      .title("Circuit breakers")
      .datasource(DATASOURCE)
      .span(8)
      .height(8)
      .mappings([{
        type: MappingType.ValueToText,
        options: {
          "0": { text: "closed", color: "green", index: 0 },
          "1": { text: "half-open", color: "yellow", index: 1 },
          "2": { text: "open", color: "red", index: 2 },
        },
      }])
      .targets([
        q(`max by (instance, target) (sluice_breaker_state{${I}})`, "{{instance}} {{target}}"),
      ]),
    graph("Retries", "ops", [
      q(`sum by (target) (rate(sluice_retries_total{${I}}[${RATE}]))`, "{{target}}"),
    ]),
    graph("Concurrency limit", "short", [
      q(`sum by (target) (sluice_concurrency_limit{${I}})`, "{{target}}"),
    ]).description("The adaptive (AIMD) limit per downstream, summed over the selected workers."),
  ];
}

function efficiencyRow(): Array<Builder<Panel>> {
  const cache = `sluice_cache_requests_total{${I}}`;
  return [
    graph("Profile cache hit ratio", "percentunit", [
      q(
        `sum(rate(sluice_cache_requests_total{${I},result=~"hit|stale"}[${RATE}]))` +
          ` / sum(rate(${cache}[${RATE}]))`,
        "hit (incl. stale)",
      ),
    ]).min(0).max(1),
    graph("Enrichment batch size", "short", [
      q(
        `sum(rate(sluice_enrich_batch_size_sum{${I}}[${RATE}]))` +
          ` / sum(rate(sluice_enrich_batch_size_count{${I}}[${RATE}]))`,
        "mean ids per request",
      ),
      q(quantile("sluice_enrich_batch_size", 0.99, "le"), "p99"),
    ]),
    graph("SQS requests per message", "short", [
      q(
        `sum(rate(sluice_sqs_requests_total{${I}}[${RATE}]))` +
          ` / sum(rate(sluice_messages_total{${I}}[${RATE}]))`,
        "requests / final outcome",
      ),
      q(
        `sum by (action) (rate(sluice_sqs_requests_total{${I}}[${RATE}]))` +
          ` / scalar(sum(rate(sluice_messages_total{${I}}[${RATE}])))`,
        "{{action}}",
      ),
    ]),
  ];
}

function fleetRow(): Array<Builder<Panel>> {
  return [
    graph("Dedupe window", "s", [
      q(`min by (instance) (sluice_dedupe_window_seconds{${I}})`, "{{instance}} window"),
      q(`max by (instance) (sluice_dedupe_ttl_seconds{${I}})`, "{{instance}} DEDUP_TTL_SECONDS"),
    ]).description("What memory can hold at the observed rate, against the setting."),
    new StatPanel()
      .title("Workers up")
      .datasource(DATASOURCE)
      .span(4)
      .height(8)
      .targets([q(`sum(up{${I}} * on (instance) group_left sluice_build_info{${I}})`, "up")]),
    new TablePanel()
      .title("Build per instance")
      .datasource(DATASOURCE)
      .span(12)
      .height(8)
      .targets([
        q(`max by (instance, version, commit, runtime) (sluice_build_info{${I}})`)
          .instant()
          .format(PromQueryFormat.Table),
      ]),
    graph("CPU per worker", "percentunit", [
      q(`rate(process_cpu_seconds_total{${I}}[${RATE}])`, "{{instance}}"),
    ], 12),
    graph("Resident memory per worker", "bytes", [
      q(`process_resident_memory_bytes{${I}}`, "{{instance}}"),
    ], 12),
  ];
}

/** The dashboard model, as Grafana imports it. */
export function buildDashboard(): unknown {
  const builder = new DashboardBuilder("sluice")
    .uid("sluice-worker")
    .description("sluice SQS workers: throughput, latency, queue, downstreams, efficiency.")
    .tags(["sluice", "sqs"])
    .refresh("30s")
    .time({ from: "now-1h", to: "now" })
    .timezone("browser")
    .tooltip(DashboardCursorSync.Crosshair)
    .withVariable(
      new DatasourceVariableBuilder("datasource").label("Prometheus").type("prometheus"),
    )
    .withVariable(
      new QueryVariableBuilder("instance")
        .label("Instance")
        .datasource(DATASOURCE)
        .query("label_values(sluice_build_info, instance)")
        .definition("label_values(sluice_build_info, instance)")
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue(".*"),
    );
  const rows: Array<[string, Array<Builder<Panel>>]> = [
    ["Throughput", throughputRow()],
    ["Queue", queueRow()],
    ["Downstreams", downstreamRow()],
    ["Efficiency", efficiencyRow()],
    ["Fleet", fleetRow()],
  ];
  for (const [title, panels] of rows) {
    builder.withRow(new RowBuilder(title));
    for (const panel of panels) builder.withPanel(panel);
  }
  return builder.build();
}

/** The committed file's text: 2-space JSON with a final newline. */
export function dashboardJson(): string {
  return JSON.stringify(buildDashboard(), null, 2) + "\n";
}

if (import.meta.main) {
  const path = new URL("./sluice.json", import.meta.url);
  await Deno.writeTextFile(path, dashboardJson());
  console.log(`wrote ${path.pathname}`);
}
