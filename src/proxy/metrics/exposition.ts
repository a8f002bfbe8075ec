// Prometheus text exposition format 0.0.4 for a MetricsRegistry.
// https://prometheus.io/docs/instrumenting/exposition_formats/

import { HistogramSeries, type CounterSeries, type MetricFamily, type MetricsRegistry } from "./families.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

function labelText(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts: string[] = [];
  for (let i = 0; i < names.length; i++) parts.push(`${names[i]}="${escapeLabelValue(values[i])}"`);
  if (extra !== undefined) parts.push(extra);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function renderFamily(f: MetricFamily<CounterSeries | HistogramSeries>, out: string[]): void {
  out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
  for (const s of f.allSeries()) {
    if (s instanceof HistogramSeries) {
      let cumulative = 0;
      for (let i = 0; i <= s.bounds.length; i++) {
        cumulative += s.counts[i];
        const le = i < s.bounds.length ? formatNumber(s.bounds[i]) : "+Inf";
        out.push(`${f.name}_bucket${labelText(f.labelNames, s.labels, `le="${le}"`)} ${cumulative}`);
      }
      const labels = labelText(f.labelNames, s.labels);
      out.push(`${f.name}_sum${labels} ${formatNumber(s.sum)}`, `${f.name}_count${labels} ${s.count}`);
    } else {
      out.push(`${f.name}${labelText(f.labelNames, s.labels)} ${formatNumber(s.value)}`);
    }
  }
}

/** The whole registry as Prometheus text. Called per scrape, never per request. */
export function renderPrometheus(registry: MetricsRegistry): string {
  const out: string[] = [];
  for (const f of registry.families) renderFamily(f, out);
  out.push("");
  return out.join("\n");
}
