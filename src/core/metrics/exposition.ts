// Prometheus exposition: the text format 0.0.4 and OpenMetrics 1.0, from
// metric families built per scrape. Label values come from the traced system
// (a process's comm, an address) and so are escaped here, once, as both
// formats require: backslash, double quote and line feed.

export type MetricType = 'counter' | 'gauge' | 'histogram';

export type Labels = Record<string, string>;

export interface Sample {
  labels: Labels;
  value: number;
  /** Identity of the series within its family, when the source has one cheaper than its labels (see seriesKey). */
  key?: string;
  /** The label set already rendered (labelText(labels)): a source keeping its series between scrapes renders it once. */
  text?: string;
}

/** Cumulative buckets (count of observations <= le), as Prometheus wants them. */
export interface HistogramSample {
  labels: Labels;
  key?: string;
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

export interface MetricFamily {
  /** Without `_total` for counters: the exposition adds it. */
  name: string;
  type: MetricType;
  help: string;
  /** OpenMetrics # UNIT (a suffix of the name: seconds, bytes). */
  unit?: string;
  samples?: Sample[];
  histograms?: HistogramSample[];
  /**
   * Set when the source applied --max-series itself (before building the
   * samples it would drop): the series it refused since start.
   */
  limited?: { dropped: number };
  /** A counter family that cannot go backwards by construction (accumulated deltas): no guard needed. */
  monotonic?: boolean;
}

export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** OpenMetrics when the scraper asks for it (Prometheus does, first), else text 0.0.4. */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const [type, ...params] = part.trim().split(';').map((s) => s.trim());
    if (type.toLowerCase() !== 'application/openmetrics-text') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** A label value as both formats want it: \\ \" \n escaped; other bytes are UTF-8 as they are. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === '\\' ? '\\\\' : '\\n'));
}

export function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

/** A label set as both formats write it: {a="x",b="y"}, values escaped; '' for none. */
export function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** Render families; OpenMetrics ends with # EOF and names counters without _total in TYPE/HELP. */
export function render(families: MetricFamily[], openMetrics: boolean): string {
  const out: string[] = [];
  for (const f of families) {
    const sampleName = f.type === 'counter' ? `${f.name}_total` : f.name;
    const familyName = openMetrics ? f.name : sampleName;
    out.push(`# HELP ${familyName} ${escapeHelp(f.help)}`);
    out.push(`# TYPE ${familyName} ${f.type}`);
    if (openMetrics && f.unit) out.push(`# UNIT ${familyName} ${f.unit}`);
    for (const s of f.samples ?? []) out.push(`${sampleName}${s.text ?? labelText(s.labels)} ${formatValue(s.value)}`);
    for (const h of f.histograms ?? []) {
      for (const b of h.buckets) out.push(`${f.name}_bucket${labelText(h.labels, ['le', formatValue(b.le)])} ${b.count}`);
      out.push(`${f.name}_bucket${labelText(h.labels, ['le', '+Inf'])} ${h.count}`);
      out.push(`${f.name}_sum${labelText(h.labels)} ${formatValue(h.sum)}`);
      out.push(`${f.name}_count${labelText(h.labels)} ${h.count}`);
    }
  }
  if (openMetrics) out.push('# EOF');
  return out.join('\n') + '\n';
}

/**
 * A log2 histogram of the BPF side (slot i holds values v with
 * floor(log2(v)) = i, slot 0 also v = 0; bcc's layout) as cumulative `le`
 * buckets: every value of slot i is below 2^(i+1) units, so
 * le = 2^(i+1) * unitSeconds loses no count. Buckets past the last non-empty
 * slot are left out (+Inf carries the total), beyond minSlots.
 */
export function log2Buckets(slots: number[], unitSeconds: number, minSlots = 1): { buckets: { le: number; count: number }[]; count: number } {
  let last = -1;
  slots.forEach((c, i) => { if (c > 0) last = i; });
  const buckets: { le: number; count: number }[] = [];
  let cum = 0;
  // At least minSlots buckets, so the series set stays the same from one
  // scrape to the next while no observation goes beyond them.
  for (let i = 0; i <= Math.max(last, minSlots - 1); i++) {
    cum += slots[i] ?? 0;
    buckets.push({ le: 2 ** (i + 1) * unitSeconds, count: cum });
  }
  return { buckets, count: cum };
}
