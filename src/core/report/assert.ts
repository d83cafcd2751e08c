// --assert: resolving an expression's names against a tool's figures, and
// evaluating it at the end of a run. The grammar and parser are in
// assert-parse.ts.
import { UsageError } from '../errors.js';
import { closest } from '../suggest.js';
import { formatCount, formatDuration } from '../output/format.js';
import { TIME_UNITS, PERCENTILES, getPath, percentileName, rowLabel, type FigureSchema, type FieldSpec, type Figures } from './figures.js';
import type { Assertion, Node, Operand } from './assert-parse.js';

export { parseAssertion, collectAssertion, MAX_ASSERT_LENGTH, MAX_ASSERT_DEPTH, MAX_ASSERT_CONDITIONS } from './assert-parse.js';
export type { Assertion, Node, Operand } from './assert-parse.js';

// ---- names -------------------------------------------------------------------

type Kind = 'count' | 'duration' | 'max' | 'percentile';

function fieldsOf(spec: FieldSpec | undefined): Map<string, Kind> {
  const m = new Map<string, Kind>();
  if (!spec) return m;
  for (const f of spec.counts ?? []) m.set(f, 'count');
  for (const f of spec.durations ?? []) m.set(f, 'duration');
  for (const f of spec.maxima ?? []) m.set(f, f.endsWith('_ns') ? 'duration' : 'max');
  if (m.has('total_ns') && m.has('count')) m.set('avg_ns', 'duration');
  for (const [f, h] of Object.entries(spec.histograms ?? {})) {
    if (TIME_UNITS[h.unit] === undefined) continue;
    for (const p of PERCENTILES) m.set(percentileName(f, p), 'percentile');
  }
  return m;
}

interface Resolved {
  /** 'row': figures[rows][label][field]; 'total': figures.total[field]; 'top': figures[field]. */
  where: 'row' | 'total' | 'top';
  label?: string;
  field: string;
  kind: Kind;
  /** A row that never occurred counts as 0 (a known row, or ROW?.FIELD); else it fails the assertion. */
  absentIsZero?: boolean;
}

function pick(fields: Map<string, Kind>, name: string): string | undefined {
  if (fields.has(name)) return name;
  if (fields.has(`${name}_ns`)) return `${name}_ns`;
  return undefined;
}

/** What a path names in a tool's figures, or a UsageError listing what there is. */
export function resolvePath(segments: string[], schema: FigureSchema, tool: string, absentIsZero = false): Resolved {
  const top = fieldsOf(schema.top);
  const rows = fieldsOf(schema.rows);
  const known = () => {
    const names = [...top.keys(), ...[...rows.keys()].map((f) => (schema.rows ? `ROW.${f}` : f))];
    return `${tool}'s figures: ${names.map((n) => n.replace(/_ns$/, '')).join(', ') || 'none'}`;
  };
  const bad = (why: string): never => {
    throw new UsageError(`--assert: ${why}`, known());
  };
  const text = segments.join('.');
  if (segments.length === 1) {
    const t = pick(top, segments[0]);
    if (t) return { where: 'top', field: t, kind: top.get(t)! };
    const r = pick(rows, segments[0]);
    if (r && rows.get(r) !== 'percentile') return { where: 'total', field: r, kind: rows.get(r)! };
    return bad(`no figure '${text}'`);
  }
  const field = segments[segments.length - 1];
  if (!schema.rows) return bad(`${tool} has no rows: '${text}' names none of its figures`);
  const r = pick(rows, field);
  if (!r) return bad(`'${field}' in '${text}' is not a figure of a ${schema.rows.noun}`);
  if (segments.length === 2 && segments[0] === 'total') {
    if (rows.get(r) === 'percentile') bad(`total.${field}: percentiles are per ${schema.rows.noun}, not summed`);
    return { where: 'total', field: r, kind: rows.get(r)! };
  }
  const label = segments.slice(0, -1).join('.');
  const labels = schema.rows.labels;
  if (labels) {
    if (!labels.includes(label)) {
      const near = closest(label, labels);
      throw new UsageError(`--assert: no ${schema.rows.noun} '${label}' in '${text}'${near ? ` (did you mean ${near}?)` : ''}`,
        labels.length <= 12 ? `${tool}'s ${schema.rows.noun}s: ${labels.join(', ')}` : `${tool} knows ${labels.length} ${schema.rows.noun}s by name`);
    }
    return { where: 'row', label, field: r, kind: rows.get(r)!, absentIsZero: true };
  }
  return { where: 'row', label, field: r, kind: rows.get(r)!, absentIsZero };
}

/**
 * Check every name of the assertions against the tool's schema, and units
 * against kinds (a duration wants a time unit): before anything is loaded.
 */
export function checkAssertions(list: Assertion[], schema: FigureSchema, tool: string): void {
  const walk = (n: Node): void => {
    if (n.kind === 'not') return walk(n.expr);
    if (n.kind !== 'cmp') {
      walk(n.left);
      walk(n.right);
      return;
    }
    const kinds = [n.left, n.right].map((o) => (o.kind === 'path' ? resolvePath(o.segments, schema, tool, o.absentIsZero).kind : undefined));
    for (const [i, o] of [n.left, n.right].entries()) {
      if (o.kind !== 'number') continue;
      const other = kinds[1 - i];
      const isTime = other === 'duration' || other === 'percentile';
      if (isTime && !o.time && o.value !== 0) {
        throw new UsageError(`--assert '${list.find((a) => containsNode(a.ast, n))?.text}': ${n[i ? 'left' : 'right'].text} is a duration: give ${o.text} a unit`, `e.g. ${o.text}ms; units: ns us ms s`);
      }
      if (!isTime && o.time && other !== undefined) {
        throw new UsageError(`--assert '${list.find((a) => containsNode(a.ast, n))?.text}': ${n[i ? 'left' : 'right'].text} is not a duration: ${o.text} has a time unit`);
      }
    }
  };
  for (const a of list) walk(a.ast);
}

function containsNode(root: Node, n: Node): boolean {
  if (root === n) return true;
  if (root.kind === 'not') return containsNode(root.expr, n);
  if (root.kind === 'cmp') return false;
  return containsNode(root.left, n) || containsNode(root.right, n);
}

// ---- evaluation ----------------------------------------------------------------

export interface Outcome {
  assertion: Assertion;
  ok: boolean;
  /** Each figure the assertion read, and its value (undefined: no samples, or no such row in the run). */
  values: { name: string; value: number | undefined; kind: Kind; absent?: boolean }[];
}

function lookup(res: Resolved, figures: Figures, schema: FigureSchema): number | undefined {
  let v: unknown;
  if (res.where === 'top') v = getPath(figures, res.field);
  else if (res.where === 'total') v = getPath((figures.total ?? {}) as Figures, res.field);
  else {
    const rs = schema.rows!;
    const list = (figures[rs.array] as Figures[] | undefined) ?? [];
    const row = list.find((r) => rowLabel(r, rs.key) === res.label);
    if (!row) return res.absentIsZero && res.kind !== 'percentile' ? 0 : undefined;
    v = getPath(row, res.field);
  }
  if (res.kind === 'percentile') {
    // No samples: no percentile (rather than a vacuous 0).
    const count = res.where === 'top' ? getPath(figures, 'count') : undefined;
    if (typeof count === 'number' && count === 0) return undefined;
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : res.kind === 'percentile' ? undefined : 0;
}

export function evaluate(a: Assertion, figures: Figures, schema: FigureSchema, tool: string): Outcome {
  const values: Outcome['values'] = [];
  const value = (o: Operand): number | undefined => {
    if (o.kind === 'number') return o.value;
    const res = resolvePath(o.segments, schema, tool, o.absentIsZero);
    const v = lookup(res, figures, schema);
    const absent = res.where === 'row' && v === undefined && !rowPresent(res, figures, schema);
    if (!values.some((x) => x.name === o.text)) values.push({ name: o.text, value: v, kind: res.kind, ...(absent ? { absent } : {}) });
    return v;
  };
  const run = (n: Node): boolean => {
    switch (n.kind) {
      case 'not': return !run(n.expr);
      case 'and': { const l = run(n.left); const r = run(n.right); return l && r; }
      case 'or': { const l = run(n.left); const r = run(n.right); return l || r; }
      case 'cmp': {
        const l = value(n.left);
        const r = value(n.right);
        if (l === undefined || r === undefined) return false;
        switch (n.op) {
          case '<': return l < r;
          case '<=': return l <= r;
          case '>': return l > r;
          case '>=': return l >= r;
          case '==': return l === r;
          case '!=': return l !== r;
        }
      }
    }
  };
  return { assertion: a, ok: run(a.ast), values };
}

function rowPresent(res: Resolved, figures: Figures, schema: FigureSchema): boolean {
  const rs = schema.rows!;
  return ((figures[rs.array] as Figures[] | undefined) ?? []).some((r) => rowLabel(r, rs.key) === res.label);
}

export function formatValue(v: { value: number | undefined; kind: Kind; absent?: boolean }): string {
  if (v.absent) return "no such row in this run (ROW?.FIELD counts an absent row as 0)";
  if (v.value === undefined) return 'no samples';
  if (v.kind === 'duration' || v.kind === 'percentile') return `${formatCount(Math.round(v.value))} ns (${formatDuration(v.value)})`;
  return formatCount(v.value);
}

/** One line per outcome: `assertion failed: realloc.count <= 40000 (realloc.count = 90,002)`. */
export function describeOutcome(o: Outcome): string {
  const vals = o.values.map((v) => `${v.name} = ${formatValue(v)}`).join(', ');
  return `assertion ${o.ok ? 'passed' : 'failed'}: ${o.assertion.text}${vals ? ` (${vals})` : ''}`;
}
