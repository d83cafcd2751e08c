// --assert EXPR: conditions over a run's figures, e.g.
//   'openat.errors < 100'   'realloc.count <= 40k'   'p99 < 2ms'   'overflows == 0'
//   'total.count > 0 and "127.0.0.1:8080".drops == 0'
// Grammar (hand-written recursive descent, so errors can say where):
//   expr    := and ('or' and)*
//   and     := unary ('and' unary)*
//   unary   := 'not' unary | '(' expr ')' | compare
//   compare := operand ('<' | '<=' | '>' | '>=' | '==' | '!=') operand
//   operand := NUMBER [unit] | path
//   path    := segment ['?'] ('.' segment)*      segment := NAME | "quoted"
// Units: ns us µs ms s (times; a duration figure must be compared with one)
// and k M G (x1000). Identifiers: ROW.FIELD (a row by its key: openat,
// realloc, "127.0.0.1:8080"), total.FIELD (sum over rows), or FIELD (a figure
// of the whole run, else the total). FIELD may drop _ns: p99 = p99_ns.
// Rows: where a tool knows every row there can be (syscalls, malloc's
// functions), a name outside that set is a usage error, and a known row that
// never occurred counts as 0. Where rows are open (listeners, processes,
// functions by pattern), a row absent from the run fails the assertion,
// unless its name ends in '?': 'ROW?.FIELD' counts an absent row as 0.
import { UsageError } from '../errors.js';
import { closest } from '../suggest.js';
import { formatCount, formatDuration } from '../output/format.js';
import { TIME_UNITS, PERCENTILES, getPath, percentileName, rowLabel, type FigureSchema, type FieldSpec, type Figures } from './figures.js';

type Op = '<' | '<=' | '>' | '>=' | '==' | '!=';

export type Operand =
  | { kind: 'number'; value: number; time: boolean; text: string }
  | { kind: 'path'; segments: string[]; text: string; absentIsZero?: boolean };

export type Node =
  | { kind: 'cmp'; op: Op; left: Operand; right: Operand }
  | { kind: 'and' | 'or'; left: Node; right: Node }
  | { kind: 'not'; expr: Node };

export interface Assertion {
  text: string;
  ast: Node;
}

const MULTIPLIERS: Record<string, number> = { k: 1e3, K: 1e3, M: 1e6, G: 1e9 };
const TIME_SUFFIXES: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9 };

interface Token {
  type: 'num' | 'name' | 'str' | 'op' | '(' | ')' | '.' | '?' | 'end';
  text: string;
  pos: number;
  value?: number;
  time?: boolean;
}

function fail(text: string, pos: number, what: string): never {
  throw new UsageError(`--assert '${text}': ${what} at column ${pos + 1}`, 'see ASSERTIONS in man rbtrace');
}

function lex(text: string): Token[] {
  const toks: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) { i++; continue; }
    const start = i;
    const num = /^(\d+(?:\.\d+)?(?:e[+-]?\d+)?)([A-Za-zµ]*)/.exec(text.slice(i));
    if (num && /\d/.test(c)) {
      const [all, digits, unit] = num;
      let value = Number(digits);
      let time = false;
      if (unit) {
        if (TIME_SUFFIXES[unit] !== undefined) { value *= TIME_SUFFIXES[unit]; time = true; }
        else if (MULTIPLIERS[unit] !== undefined) value *= MULTIPLIERS[unit];
        else fail(text, i + digits.length, `unknown unit '${unit}' (units: ns us ms s, k M G)`);
      }
      toks.push({ type: 'num', text: all, pos: start, value, time });
      i += all.length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i));
    if (name) {
      toks.push({ type: 'name', text: name[0], pos: start });
      i += name[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail(text, i, 'unterminated quoted name');
      toks.push({ type: 'str', text: text.slice(i + 1, end), pos: start });
      i = end + 1;
      continue;
    }
    const op = /^(<=|>=|==|!=|<|>)/.exec(text.slice(i));
    if (op) {
      toks.push({ type: 'op', text: op[0], pos: start });
      i += op[0].length;
      continue;
    }
    if (c === '(' || c === ')' || c === '.' || c === '?') {
      toks.push({ type: c, text: c, pos: start });
      i++;
      continue;
    }
    if (c === '=') fail(text, i, "unexpected '=' (comparisons: < <= > >= == !=)");
    fail(text, i, `unexpected '${c}'`);
  }
  toks.push({ type: 'end', text: '', pos: text.length });
  return toks;
}

// Bounds on one expression: far past any condition a person writes, well
// short of the recursion (parsing, checking, evaluating) that overflows the
// stack at ~3,000 levels or ~4,000 joined conditions.
export const MAX_ASSERT_LENGTH = 4096;
export const MAX_ASSERT_DEPTH = 32;
export const MAX_ASSERT_CONDITIONS = 256;

/** Parse one --assert expression; a UsageError (one line, exit 2) on bad syntax. */
export function parseAssertion(text: string): Assertion {
  if (text.length > MAX_ASSERT_LENGTH) {
    throw new UsageError(`--assert: an expression of ${text.length} characters (at most ${MAX_ASSERT_LENGTH})`, 'split it into several --assert options');
  }
  const toks = lex(text);
  let k = 0;
  let depth = 0;
  let conditions = 0;
  const peek = (ahead = 0) => toks[Math.min(k + ahead, toks.length - 1)];
  const isWord = (w: string) => peek().type === 'name' && peek().text === w;
  const describe = (t: Token) => (t.type === 'end' ? 'end of expression' : `'${t.text}'`);

  const operand = (): Operand => {
    const t = peek();
    if (t.type === 'num') {
      k++;
      return { kind: 'number', value: t.value!, time: Boolean(t.time), text: t.text };
    }
    if ((t.type === 'name' && !['and', 'or', 'not'].includes(t.text)) || t.type === 'str') {
      const segments = [t.text];
      let question: { at: number; pos: number } | undefined;
      const misplaced = (pos: number): never => fail(text, pos, "'?' goes after a row's name, before '.FIELD' (ROW?.FIELD: an absent row counts as 0)");
      k++;
      for (;;) {
        if (peek().type === '?') {
          if (question || peek(1).type !== '.') misplaced(peek().pos);
          question = { at: segments.length, pos: peek().pos };
          k++;
        }
        if (peek().type !== '.') break;
        k++;
        const s = peek();
        if (s.type !== 'name' && s.type !== 'str' && s.type !== 'num') fail(text, s.pos, `a name after '.', not ${describe(s)}`);
        segments.push(s.text);
        k++;
      }
      // Only right after the whole row's name (the row's key may span segments: comm.name).
      if (question && question.at !== segments.length - 1) misplaced(question.pos);
      const absentIsZero = question !== undefined;
      const shown = segments.map((s) => (/^[A-Za-z0-9_-]+$/.test(s) ? s : JSON.stringify(s)));
      if (absentIsZero) shown[shown.length - 2] += '?';
      return { kind: 'path', segments, text: shown.join('.'), ...(absentIsZero ? { absentIsZero } : {}) };
    }
    return fail(text, t.pos, `expected a figure or a number, found ${describe(t)}`);
  };

  const compare = (): Node => {
    const left = operand();
    const t = peek();
    if (t.type !== 'op') fail(text, t.pos, `expected a comparison (< <= > >= == !=), found ${describe(t)}`);
    k++;
    const right = operand();
    if (left.kind === 'number' && right.kind === 'number') fail(text, t.pos, 'a comparison of two numbers (name a figure)');
    if (++conditions > MAX_ASSERT_CONDITIONS) fail(text, t.pos, `more than ${MAX_ASSERT_CONDITIONS} conditions in one expression (split it into several --assert options)`);
    return { kind: 'cmp', op: t.text as Op, left, right };
  };

  const unary = (): Node => {
    if (!isWord('not') && peek().type !== '(') return compare();
    if (++depth > MAX_ASSERT_DEPTH) fail(text, peek().pos, `nested more than ${MAX_ASSERT_DEPTH} deep (parentheses and 'not')`);
    let node: Node;
    if (isWord('not')) {
      k++;
      node = { kind: 'not', expr: unary() };
    } else {
      k++;
      node = expr();
      if (peek().type !== ')') fail(text, peek().pos, `expected ')', found ${describe(peek())}`);
      k++;
    }
    depth--;
    return node;
  };

  const and = (): Node => {
    let left = unary();
    while (isWord('and')) {
      k++;
      left = { kind: 'and', left, right: unary() };
    }
    return left;
  };

  const expr = (): Node => {
    let left = and();
    while (isWord('or')) {
      k++;
      left = { kind: 'or', left, right: and() };
    }
    return left;
  };

  if (text.trim() === '') throw new UsageError("--assert wants an expression", "e.g. --assert 'total.count > 0'");
  const ast = expr();
  if (peek().type !== 'end') fail(text, peek().pos, `unexpected ${describe(peek())} (join conditions with and/or)`);
  return { text, ast };
}

/** commander argParser: --assert may be given many times. */
export function collectAssertion(text: string, previous: Assertion[] | undefined): Assertion[] {
  return [...(previous ?? []), parseAssertion(text)];
}

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
