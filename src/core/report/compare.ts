// Two runs' figures side by side: per row (matched by key), each figure's
// change, and each histogram's shift judged by stats.ts. Used by
// `rbtrace diff` and by --baseline.
import { PERCENTILES, TIME_UNITS, getPath, percentileName, primaryField, rowLabel, toSlots, type FieldSpec, type FigureSchema, type Figures } from './figures.js';
import { compareHistograms, type Comparison } from './stats.js';

export type FieldKind = 'count' | 'duration' | 'max' | 'percentile';

export interface FieldChange {
  field: string;
  kind: FieldKind;
  before: number;
  after: number;
  change: number;
  /** Relative change in per cent (null when before is 0). */
  change_pct: number | null;
}

export interface HistChange extends Comparison {
  field: string;
  unit: string;
  before: number[];
  after: number[];
}

export interface RowChange {
  /** The row's label (its key values joined by ':'); '' for the whole run. */
  label: string;
  /** 'both', or the side it is missing from. */
  presence: 'both' | 'before-only' | 'after-only';
  fields: FieldChange[];
  histograms: HistChange[];
}

function numericFields(spec: FieldSpec | undefined): [string, FieldKind][] {
  if (!spec) return [];
  const out: [string, FieldKind][] = [];
  for (const f of spec.counts ?? []) out.push([f, 'count']);
  for (const f of spec.durations ?? []) out.push([f, 'duration']);
  if ((spec.durations ?? []).includes('total_ns') && (spec.counts ?? []).includes('count')) out.push(['avg_ns', 'duration']);
  for (const [f, h] of Object.entries(spec.histograms ?? {})) {
    if (TIME_UNITS[h.unit] === undefined) continue;
    for (const p of PERCENTILES) out.push([percentileName(f, p), 'percentile']);
  }
  for (const f of spec.maxima ?? []) out.push([f, f.endsWith('_ns') ? 'duration' : 'max']);
  return out;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function compareLevel(label: string, a: Figures | undefined, b: Figures | undefined, spec: FieldSpec | undefined): RowChange {
  const fields: FieldChange[] = [];
  for (const [f, kind] of numericFields(spec)) {
    const before = num(a && getPath(a, f));
    const after = num(b && getPath(b, f));
    if (a && b && getPath(a, f) === undefined && getPath(b, f) === undefined) continue; // not measured in this mode
    fields.push({ field: f, kind, before, after, change: after - before, change_pct: before ? ((after - before) / before) * 100 : null });
  }
  const histograms: HistChange[] = [];
  for (const [f, h] of Object.entries(spec?.histograms ?? {})) {
    const before = toSlots(a && getPath(a, f));
    const after = toSlots(b && getPath(b, f));
    if (before.length === 0 && after.length === 0) continue;
    histograms.push({ field: f, unit: h.unit, before, after, ...compareHistograms(before, after) });
  }
  return { label, presence: a && b ? 'both' : a ? 'before-only' : 'after-only', fields, histograms };
}

/** Every row of either run (and the whole run's figures first), sorted by the size of the primary figure's change. */
export function compareFigures(schema: FigureSchema, before: Figures, after: Figures): RowChange[] {
  const out: RowChange[] = [];
  if (schema.top && numericFields(schema.top).length + Object.keys(schema.top.histograms ?? {}).length > 0) {
    out.push(compareLevel('', before, after, schema.top));
  }
  const rs = schema.rows;
  if (!rs) return out;
  const index = (f: Figures) => new Map(((f[rs.array] as Figures[] | undefined) ?? []).map((r) => [rowLabel(r, rs.key), r]));
  const a = index(before);
  const b = index(after);
  const labels = [...new Set([...a.keys(), ...b.keys()])];
  const primary = primaryField(schema);
  const rows = labels.map((l) => compareLevel(l, a.get(l), b.get(l), rs));
  const size = (r: RowChange) => Math.abs(r.fields.find((f) => f.field === primary)?.change ?? 0);
  rows.sort((x, y) => size(y) - size(x) || x.label.localeCompare(y.label));
  return out.concat(rows);
}

/** The histogram a percentile figure is derived from. */
export function histogramOf(r: RowChange, field: string): HistChange | undefined {
  return r.histograms.find((h) => PERCENTILES.some((p) => percentileName(h.field, p) === field));
}

/**
 * Changed: present in one run only, a count or maximum differs, or a
 * histogram is judged shifted. Times alone (total, average) are not judged:
 * they vary from run to run and carry no distribution to test.
 */
export function rowChanged(r: RowChange): boolean {
  return r.presence !== 'both' || r.fields.some((f) => f.change !== 0 && (f.kind === 'count' || f.kind === 'max'))
    || r.histograms.some((h) => h.verdict === 'higher' || h.verdict === 'lower');
}
