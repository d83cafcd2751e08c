// A run's figures: what --save writes, --assert and --baseline judge, and
// `rbtrace diff` compares. A tool describes its figures once (a FigureSchema:
// which array holds the rows, what identifies a row, which fields are counts,
// durations, maxima, histograms) and hands them over with ctx.report(), as
// deltas, whatever the view (text, chart, --json). The collector merges the
// deltas into the run's totals by that schema, so -i and per-event tools need
// no bookkeeping of their own.
import { log2HistToJson, log2Percentile, log2Slot, type Log2Bucket } from '../output/histogram.js';

/** How the fields of one level (the rows, or the top level) combine. */
export interface FieldSpec {
  /** Additive whole numbers (calls, errors, bytes, overflows). */
  counts?: string[];
  /** Additive durations in ns (total time). */
  durations?: string[];
  /** Maxima over the run (max latency, peak queue length, peak RSS). */
  maxima?: string[];
  /** Log2 histograms, by field name: their unit, and whether they are latencies. */
  histograms?: Record<string, { unit: string }>;
}

export interface FigureSchema {
  /** The rows: figures[array] is a list of objects identified by their key fields. */
  rows?: FieldSpec & {
    array: string;
    /** Fields identifying a row across runs (not pids: they change); absent ones are skipped. */
    key: string[];
    /** Word for a row in diff's header (syscall, function, listener, ...). */
    noun: string;
    /**
     * Every label a row can have, where the tool knows them (syscall names,
     * malloc's functions): --assert refuses any other name. Without it the
     * rows are open (listeners, processes), and a row absent from a run
     * fails an assertion that names it, unless written ROW?.FIELD.
     */
    labels?: readonly string[];
  };
  /** Figures of the whole run (strlat's count and histogram, ...). */
  top?: FieldSpec;
  /** The field rows are compared and sorted by in diffs (default: the first count). */
  primary?: string;
}

export type Figures = Record<string, unknown>;
type Row = Record<string, unknown>;

/** Units a histogram field can have that are times, with their size in ns. */
export const TIME_UNITS: Record<string, number> = { ns: 1, nsecs: 1, us: 1e3, usecs: 1e3, ms: 1e6, msecs: 1e6, s: 1e9 };

export const PERCENTILES = [50, 90, 99] as const;

/** The derived percentile figure of a histogram field: hist -> p99_ns, size_hist -> size_p99_ns. */
export function percentileName(histField: string, p: number): string {
  return `${histField === 'hist' ? '' : `${histField.replace(/_?hist$/, '')}_`}p${p}_ns`;
}

/** Histogram values as slot counts, from a bucket list (--json's form) or slots. */
export function toSlots(h: unknown): number[] {
  if (!Array.isArray(h)) return [];
  if (h.every((v) => typeof v === 'number')) return h.slice() as number[];
  const slots: number[] = [];
  for (const b of h as Log2Bucket[]) {
    if (!b || typeof b.high !== 'number' || typeof b.count !== 'number') continue;
    const i = log2Slot(b.high);
    while (slots.length <= i) slots.push(0);
    slots[i] += b.count;
  }
  return slots;
}

function addSlots(a: number[], b: number[]): number[] {
  const out = a.slice();
  for (let i = 0; i < b.length; i++) out[i] = (out[i] ?? 0) + b[i];
  return out;
}

function getPath(obj: Row, path: string): unknown {
  let v: unknown = obj;
  for (const p of path.split('.')) v = v && typeof v === 'object' ? (v as Row)[p] : undefined;
  return v;
}

function setPath(obj: Row, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Row;
  o[parts[parts.length - 1]] = value;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

// The fields a spec merges itself, computed once per spec: execsnoop merges per event.
const specialFields = new WeakMap<FieldSpec, Set<string>>();

/** Merge `delta` into `into` (both one level: a row, or the top level). */
function mergeLevel(into: Row, delta: Row, spec: FieldSpec, skip?: string): void {
  let special = specialFields.get(spec);
  if (!special) {
    special = new Set([...(spec.counts ?? []), ...(spec.durations ?? []), ...(spec.maxima ?? []), ...Object.keys(spec.histograms ?? {})]);
    specialFields.set(spec, special);
  }
  for (const f of [...(spec.counts ?? []), ...(spec.durations ?? [])]) {
    const d = getPath(delta, f);
    if (d !== undefined && d !== null) setPath(into, f, num(getPath(into, f)) + num(d));
  }
  for (const f of spec.maxima ?? []) {
    const d = getPath(delta, f);
    if (typeof d === 'number') setPath(into, f, Math.max(num(getPath(into, f)), d));
  }
  for (const f of Object.keys(spec.histograms ?? {})) {
    const d = getPath(delta, f);
    if (d !== undefined) setPath(into, f, addSlots(toSlots(getPath(into, f)), toSlots(d)));
  }
  // Anything else (names, limits, current queue lengths): the latest value.
  for (const k in delta) if (k !== skip && !special.has(k)) into[k] = delta[k];
}

/** The label of a row: its key fields' values joined with ':' (e.g. 127.0.0.1:8080). */
export function rowLabel(row: Row, key: string[]): string {
  return key.filter((k) => row[k] !== undefined && row[k] !== null).map((k) => String(row[k])).join(':');
}

/** Sums a tool's deltas into the run's figures. */
export class FigureCollector {
  private top: Row = {};
  private readonly rows = new Map<string, Row>();
  private reported = false;

  private readonly topSpec: FieldSpec;

  constructor(readonly schema: FigureSchema) {
    this.topSpec = schema.top ?? {};
  }

  get hasFigures(): boolean {
    return this.reported;
  }

  /** `object`: a tool's typed report interface (no index signature) is welcome as it is. */
  add(obj: object): void {
    const delta = obj as Figures;
    this.reported = true;
    const rs = this.schema.rows;
    mergeLevel(this.top, delta, this.topSpec, rs?.array);
    if (!rs) return;
    const list = delta[rs.array];
    if (!Array.isArray(list)) return;
    for (const r of list as Row[]) {
      const label = rowLabel(r, rs.key);
      let into = this.rows.get(label);
      if (!into) this.rows.set(label, (into = {}));
      // Pids and other non-key identities of a merged row are not kept.
      mergeLevel(into, r, rs);
    }
  }

  /** The run's figures: histograms as bucket lists, derived figures and totals added. */
  result(): Figures {
    const out: Figures = { ...this.top };
    const rs = this.schema.rows;
    if (rs) out[rs.array] = [...this.rows.values()].map((r) => ({ ...r }));
    return finishFigures(out, this.schema);
  }
}

/** Add what is derived (avg, percentiles, totals) and write histograms as buckets. Idempotent. */
export function finishFigures(figures: Figures, schema: FigureSchema): Figures {
  const out: Figures = { ...figures };
  const level = (row: Row, spec: FieldSpec) => {
    for (const [f, h] of Object.entries(spec.histograms ?? {})) {
      const raw = getPath(row, f);
      if (raw === undefined) continue;
      const slots = toSlots(raw);
      setPath(row, f, log2HistToJson(slots));
      const scale = TIME_UNITS[h.unit];
      if (scale === undefined) continue;
      // Percentiles of latency histograms, in ns: upper bounds of log2 buckets.
      const total = slots.reduce((a, b) => a + b, 0);
      for (const p of PERCENTILES) setPath(row, percentileName(f, p), total ? log2Percentile(slots, p) * scale : 0);
    }
    // Timed calls when only some are (mallocstat), else all of them.
    const count = getPath(row, 'timed') ?? getPath(row, 'count');
    if (typeof getPath(row, 'total_ns') === 'number' && typeof count === 'number') {
      row.avg_ns = count ? Math.round(num(row.total_ns) / count) : 0;
    }
  };
  level(out, schema.top ?? {});
  const rs = schema.rows;
  if (rs) {
    const rows = ((out[rs.array] as Row[] | undefined) ?? []).map((r) => ({ ...r }));
    for (const r of rows) level(r, rs);
    const primary = primaryField(schema);
    if (primary) rows.sort((a, b) => num(getPath(b, primary)) - num(getPath(a, primary)) || rowLabel(a, rs.key).localeCompare(rowLabel(b, rs.key)));
    out[rs.array] = rows;
    out.total = totals(rows, rs);
  }
  return out;
}

/** Sums (maxima: the max) of the rows' figures: `total.count`, or plain `overflows` in --assert. */
function totals(rows: Row[], spec: FieldSpec): Row {
  const t: Row = {};
  for (const f of [...(spec.counts ?? []), ...(spec.durations ?? [])]) t[f] = rows.reduce((a, r) => a + num(getPath(r, f)), 0);
  for (const f of spec.maxima ?? []) t[f] = rows.reduce((a, r) => Math.max(a, num(getPath(r, f))), 0);
  return t;
}

export function primaryField(schema: FigureSchema): string | undefined {
  return schema.primary ?? schema.rows?.counts?.[0] ?? schema.top?.counts?.[0];
}

export { getPath };
