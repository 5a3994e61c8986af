/**
 * A real Prometheus (Debian's package, run here on 127.0.0.1 with a temp dir)
 * scrapes a worker during a lab run every second. Then every dashboard panel's
 * queries and every alert expression go through its HTTP API: each panel
 * returns data, each alert expression evaluates, and "worker down" and "DLQ
 * receiving" fire once the lab has made them true (a tenth of the bodies are poison,
 * dead-lettered; the worker stops at the end). `promtool check metrics` runs
 * on a scrape taken mid-run.
 */
import assert from "node:assert/strict";
import { runLab } from "../../lab/lab.ts";
import { promtoolCheckMetrics, REPO } from "../support/command.ts";

interface PanelJson {
  type: string;
  title: string;
  targets?: Array<{ expr?: string }>;
}

interface PromAnswer {
  status: string;
  error?: string;
  data: { result: Array<{ metric: Record<string, string>; values?: unknown[]; value?: unknown }> };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The rules with every `for:` at 0 s, so an alert fires at the first evaluation that holds. */
async function rulesWithoutFor(): Promise<string> {
  const rules = await Deno.readTextFile(`${REPO}/ops/prometheus/rules.yml`);
  return rules.replace(/^(\s+)for: \S+$/gm, "$1for: 0s");
}

async function startPrometheus(dir: string, port: number, target: string) {
  await Deno.writeTextFile(`${dir}/rules.yml`, await rulesWithoutFor());
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    [
      "global: { scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms }",
      "rule_files: [rules.yml]",
      "scrape_configs:",
      `  - { job_name: sluice, static_configs: [{ targets: ["${target}"] }] }`,
      "",
    ].join("\n"),
  );
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`${base}/-/ready`);
      await res.body?.cancel();
      if (res.ok) return { child, base, stderr };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  await child.status;
  throw new Error(`prometheus did not become ready: ${await stderr}`);
}

async function api(base: string, path: string, params: Record<string, string>) {
  const res = await fetch(`${base}/api/v1/${path}?${new URLSearchParams(params)}`);
  const body = await res.json() as PromAnswer;
  assert.equal(body.status, "success", `${path} ${JSON.stringify(params)}: ${body.error}`);
  return body.data.result;
}

/** A panel query as Grafana would send it with "All" instances and a 1 s scrape interval. */
function concrete(expr: string): string {
  return expr.replaceAll("$instance", ".*").replaceAll("$__rate_interval", "4s");
}

async function runScrapedLab(workerPort: number) {
  let scrape: Promise<string> | undefined;
  const summary = await runLab({
    scenario: "io_mild",
    messages: 3000,
    rate: 400,
    users: 2000,
    seed: 11,
    // Above the alert's 5 %: a tenth of the bodies are poison, dead-lettered.
    poisonShare: 0.1,
    duplicateShare: 0.01,
    unknownShare: 0.01,
    hotShare: 0.2,
    timeoutSeconds: 45,
    workerEnv: { HTTP_PORT: String(workerPort), LOG_LEVEL: "warn" },
    onProgress: (p) => {
      if (scrape === undefined && p.accepted > 1000) {
        scrape = fetch(`http://127.0.0.1:${workerPort}/metrics`).then((r) => r.text());
      }
    },
  });
  return { summary, scrape: await scrape };
}

Deno.test({
  name: "real Prometheus: every panel returns data, worker-down and DLQ alerts fire",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-prom-" });
    const workerPort = freePort();
    const prom = await startPrometheus(dir, freePort(), `127.0.0.1:${workerPort}`);
    try {
      const start = Date.now() / 1000;
      const { summary, scrape } = await runScrapedLab(workerPort);
      assert.ok(summary.ok, summary.problems.join("; "));
      assert.ok(scrape, "a scrape was taken mid-run");
      const checked = await promtoolCheckMetrics(scrape);
      assert.equal(checked.code, 0, `promtool check metrics:\n${checked.out}`);
      const stoppedAt = Date.now() / 1000;
      await new Promise((r) => setTimeout(r, 3000)); // scrapes of the stopped worker fail
      const end = Date.now() / 1000;
      const range = { start: String(start), end: String(end), step: "1" };

      const up = await api(prom.base, "query_range", { query: "max(up)", ...range });
      assert.ok(JSON.stringify(up).includes('"1"'), "the worker was scraped while it ran");

      const dashboard = JSON.parse(await Deno.readTextFile(`${REPO}/ops/grafana/sluice.json`));
      const panels = (dashboard.panels as PanelJson[]).filter((p) => p.type !== "row");
      const empty: string[] = [];
      for (const panel of panels) {
        let series = 0;
        for (const target of panel.targets ?? []) {
          const result = await api(prom.base, "query_range", {
            query: concrete(target.expr ?? ""),
            ...range,
          });
          series += result.length;
        }
        if (series === 0) empty.push(panel.title);
      }
      assert.deepEqual(empty, [], "panels without data");

      await assertAlerts(prom.base, stoppedAt);
    } finally {
      prom.child.kill("SIGTERM");
      await prom.child.status;
      await prom.stderr;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Every alert expression evaluates; the two the lab makes true are firing. */
async function assertAlerts(base: string, stoppedAt: number): Promise<void> {
  const res = await fetch(`${base}/api/v1/rules?type=alert`);
  const body = await res.json() as {
    data: { groups: Array<{ rules: Array<{ name: string; query: string; health: string }> }> };
  };
  const rules = body.data.groups.flatMap((g) => g.rules);
  assert.equal(rules.length, 7);
  for (const rule of rules) {
    assert.equal(rule.health, "ok", `${rule.name} evaluates`);
    await api(base, "query", { query: rule.query }); // asserts success
  }
  const alerts = await (await fetch(`${base}/api/v1/alerts`)).json() as {
    data: { alerts: Array<{ labels: Record<string, string>; state: string; activeAt: string }> };
  };
  const firing = (name: string) =>
    alerts.data.alerts.find((a) => a.labels.alertname === name && a.state === "firing");
  const down = firing("SluiceWorkerDown");
  assert.ok(down, `worker down fires: ${JSON.stringify(alerts.data.alerts)}`);
  assert.ok(
    Date.parse(down.activeAt) / 1000 >= stoppedAt - 2,
    `worker down became active after the lab stopped the worker (${down.activeAt})`,
  );
  assert.ok(firing("SluiceDlqReceiving"), "DLQ receiving fires (a tenth of the bodies poison)");
}
