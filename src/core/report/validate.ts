// A saved run is input like any other: a file from another user, another
// version, or hand-edited. Before diff, --baseline or --assert touch it, its
// every field the readers use is checked against the shape document.ts
// writes; the first that is wrong is named, in one line.
import type { FieldSpec } from './figures.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: Obj, k: string) => (Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined);
const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

// A field path is walked and written by figures.ts (getPath/setPath): these
// segments would reach Object.prototype instead of the figures.
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);
const NAME = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;

class Bad extends Error {}
const bad = (field: string, want: string, v: unknown): never => {
  throw new Bad(v === undefined ? `"${field}" is missing (want ${want})` : `"${field}" is ${kind(v)}, not ${want}`);
};

function str(o: Obj, k: string, at: string, optional = false): void {
  const v = own(o, k);
  if (v === undefined && optional) return;
  if (typeof v !== 'string') bad(at + k, 'a string', v);
}

function fieldName(v: unknown, at: string): void {
  if (typeof v !== 'string') bad(at, 'a field name', v);
  const s = v as string;
  if (!NAME.test(s) || s.split('.').some((p) => FORBIDDEN.has(p))) throw new Bad(`"${at}" is not a field name (letters, digits, _ and .): ${JSON.stringify(s).slice(0, 60)}`);
}

function names(o: Obj, k: string, at: string): void {
  const v = own(o, k);
  if (v === undefined) return;
  if (!Array.isArray(v)) bad(at + k, 'a list of field names', v);
  (v as unknown[]).forEach((f, i) => fieldName(f, `${at}${k}[${i}]`));
}

function fieldSpec(spec: Obj, at: string): void {
  for (const k of ['counts', 'durations', 'maxima']) names(spec, k, at);
  const h = own(spec, 'histograms');
  if (h === undefined) return;
  if (!isObj(h)) bad(`${at}histograms`, 'an object', h);
  for (const [f, u] of Object.entries(h as Obj)) {
    fieldName(f, `${at}histograms.${f}`);
    if (!isObj(u)) bad(`${at}histograms.${f}`, 'an object', u);
    str(u as Obj, 'unit', `${at}histograms.${f}.`);
  }
}

function schema(doc: Obj): FieldSpec | undefined {
  const s = own(doc, 'schema');
  if (!isObj(s)) bad('schema', 'an object', s);
  const top = own(s as Obj, 'top');
  if (top !== undefined) {
    if (!isObj(top)) bad('schema.top', 'an object', top);
    fieldSpec(top as Obj, 'schema.top.');
  }
  const primary = own(s as Obj, 'primary');
  if (primary !== undefined) fieldName(primary, 'schema.primary');
  const rows = own(s as Obj, 'rows');
  if (rows === undefined) return undefined;
  if (!isObj(rows)) bad('schema.rows', 'an object', rows);
  const r = rows as Obj;
  fieldName(own(r, 'array'), 'schema.rows.array');
  const key = own(r, 'key');
  if (!Array.isArray(key) || key.length === 0) bad('schema.rows.key', 'a list of field names', key);
  (key as unknown[]).forEach((f, i) => fieldName(f, `schema.rows.key[${i}]`));
  str(r, 'noun', 'schema.rows.');
  fieldSpec(r, 'schema.rows.');
  return r as FieldSpec;
}

function figures(doc: Obj): void {
  const f = own(doc, 'figures');
  if (!isObj(f)) bad('figures', 'an object', f);
  const rs = own(own(doc, 'schema') as Obj, 'rows') as Obj | undefined;
  if (!rs) return;
  const array = rs.array as string;
  const list = own(f as Obj, array);
  if (list === undefined) return;
  if (!Array.isArray(list)) bad(`figures.${array}`, 'a list of rows', list);
  const key = rs.key as string[];
  (list as unknown[]).forEach((row, i) => {
    if (!isObj(row)) bad(`figures.${array}[${i}]`, 'an object', row);
    for (const k of key) {
      const v = own(row as Obj, k);
      if (v !== undefined && v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') bad(`figures.${array}[${i}].${k}`, 'a string or a number', v);
    }
  });
}

/**
 * The first field of `doc` (format, version and tool already checked) that
 * is not what a saved run holds, as "FIELD is X, not Y"; undefined if none.
 */
export function firstBadField(doc: Obj): string | undefined {
  try {
    for (const k of ['rbtrace_version', 'kernel', 'started']) str(doc, k, '');
    if (Number.isNaN(Date.parse(doc.started as string))) throw new Bad(`"started" is not a date: ${JSON.stringify(doc.started).slice(0, 40)}`);
    const d = own(doc, 'duration_s');
    if (typeof d !== 'number' || !Number.isFinite(d) || d < 0) bad('duration_s', 'a number of seconds', d);
    const e = own(doc, 'exit_status');
    if (e !== undefined && (typeof e !== 'number' || !Number.isInteger(e))) bad('exit_status', 'a whole number', e);
    const opts = own(doc, 'options');
    if (!isObj(opts)) bad('options', 'an object', opts);
    const cmd = own(doc, 'command');
    if (cmd !== null && !(Array.isArray(cmd) && cmd.every((a) => typeof a === 'string'))) bad('command', 'a list of strings or null', cmd);
    const pid = own(doc, 'pid');
    if (pid !== null && pid !== undefined && !(typeof pid === 'number' && Number.isInteger(pid) && pid > 0)) bad('pid', 'a process id or null', pid);
    schema(doc);
    figures(doc);
    return undefined;
  } catch (err) {
    if (err instanceof Bad) return err.message;
    throw err;
  }
}
