/** Renders bench/throughput.svg: a hand-written grouped bar chart of msg/s per scenario. */
import type { Scenario } from "../lab/lab.ts";
import { type BenchRun, find, throughput, WORKER_LABEL, type WorkerName } from "./bench_run.ts";

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** A step for the y axis that gives about five gridlines: 1, 2 or 5 times a power of ten. */
function niceStep(max: number): number {
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/** Grouped bar chart of msg/s: one group per scenario, one bar per worker, value on each bar. */
export function renderSvg(runs: BenchRun[], scenarios: Scenario[]): string {
  const workers: WorkerName[] = ["sluice", "binary", "lean", "naive", "sqs-consumer", "ceiling"];
  const colors: Record<WorkerName, string> = {
    sluice: "#2b6cb0",
    binary: "#63b3ed",
    lean: "#805ad5",
    naive: "#c05621",
    "sqs-consumer": "#2f855a",
    ceiling: "#a0aec0",
  };
  const width = 820;
  const height = 420;
  const left = 70;
  const right = 20;
  const top = 50;
  const bottom = 70;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const values = runs.map((r) => throughput(r) ?? 0);
  const maxValue = Math.max(1, ...values);
  const step = niceStep(maxValue);
  const yMax = Math.ceil(maxValue / step) * step;
  const y = (v: number) => top + plotH - (v / yMax) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${
      width / 2
    }" y="24" text-anchor="middle" font-size="16">Throughput (accepted messages per second)</text>`,
  );
  for (let v = 0; v <= yMax + step / 2; v += step) {
    out.push(
      `<line x1="${left}" y1="${y(v).toFixed(1)}" x2="${width - right}" y2="${
        y(v).toFixed(1)
      }" stroke="#e2e8f0"/>`,
      `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`,
    );
  }
  const groupW = plotW / Math.max(1, scenarios.length);
  const barW = Math.min(40, (groupW - 30) / workers.length);
  scenarios.forEach((scenario, i) => {
    const present = workers.filter((w) => find(runs, scenario, w) !== undefined);
    const groupX = left + i * groupW + (groupW - present.length * barW) / 2;
    present.forEach((worker, j) => {
      const v = throughput(find(runs, scenario, worker)) ?? 0;
      const x = groupX + j * barW;
      out.push(
        `<rect x="${(x + 2).toFixed(1)}" y="${y(v).toFixed(1)}" width="${
          (barW - 4).toFixed(1)
        }" height="${(top + plotH - y(v)).toFixed(1)}" fill="${colors[worker]}"/>`,
        `<text x="${(x + barW / 2).toFixed(1)}" y="${
          (y(v) - 4).toFixed(1)
        }" text-anchor="middle" font-size="10">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`,
      );
    });
    out.push(
      `<text x="${(left + i * groupW + groupW / 2).toFixed(1)}" y="${
        top + plotH + 18
      }" text-anchor="middle" font-size="13">${escapeXml(scenario)}</text>`,
    );
  });
  out.push(
    `<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${
      top + plotH
    }" stroke="#4a5568"/>`,
  );
  let lx = left;
  for (const worker of workers) {
    if (!runs.some((r) => r.worker === worker)) continue;
    const label = escapeXml(WORKER_LABEL[worker]);
    out.push(
      `<rect x="${lx}" y="${height - 28}" width="12" height="12" fill="${colors[worker]}"/>`,
      `<text x="${lx + 16}" y="${height - 18}">${label}</text>`,
    );
    lx += 30 + label.length * 6.5;
  }
  out.push("</svg>", "");
  return out.join("\n");
}
