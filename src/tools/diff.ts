// rbtrace diff BEFORE.json AFTER.json: two saved runs (--save) of one tool,
// side by side. Per row (syscall, function, listener, GC phase, ...) each
// figure before and after with its absolute and relative change, rows sorted
// by the size of the change of the main figure; histograms of both runs on
// one log2 scale, with a verdict from src/core/report/stats.ts that does not
// call noise a change. All the comparing is in src/core/report/compare.ts.
import type { Command } from 'commander';
import { defineTool } from '../core/tool.js';
import { UsageError } from '../core/errors.js';
import { readDocument, type SavedRun } from '../core/report/document.js';
import { compareFigures, histogramOf, rowChanged, type FieldChange, type HistChange, type RowChange } from '../core/report/compare.js';
import { TIME_UNITS } from '../core/report/figures.js';
import { ALPHA, MIN_EFFECT, MIN_SAMPLES } from '../core/report/stats.js';
import { escapeArg, formatCount, formatDuration, plural } from '../core/output/format.js';
import { renderTable } from '../core/output/table.js';
import type { ChalkInstance } from 'chalk';

interface DiffOptions {
  json?: boolean;
  all?: boolean;
}

let files: string[] = [];

function describeRun(file: string, d: SavedRun): string {
  const what = d.command ? escapeArg(d.command.join(' ')) : d.pid ? `pid ${d.pid}` : 'whole system';
  return `${escapeArg(file)}: ${d.started.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}, ${d.duration_s.toFixed(1)} s, ${what}`;
}

function value(f: FieldChange, v: number): string {
  return f.kind === 'duration' || f.kind === 'percentile' ? formatDuration(v) : formatCount(v);
}

function changeText(r: RowChange, f: FieldChange): [string, string] {
  if (f.kind === 'percentile') {
    const h = histogramOf(r, f.field);
    if (h?.verdict === 'too-few-samples') return ['?', 'too few samples'];
    if (h?.verdict === 'no-change') return [f.change === 0 ? '0' : '~', 'within noise'];
  }
  const sign = f.change > 0 ? '+' : '';
  const abs = f.kind === 'duration' || f.kind === 'percentile' ? `${sign}${formatDuration(f.change)}` : `${sign}${formatCount(f.change)}`;
  const pct = f.change_pct === null ? (f.change ? 'new' : '') : `${f.change_pct > 0 ? '+' : ''}${f.change_pct.toFixed(1)}%`;
  return [abs, pct];
}

/** Rows (and histograms of unjudged rows) shown without --all: a diff is read from its largest changes down. */
export const SHOWN_ROWS = 100;

const SLOT_LABEL: Record<string, string> = { ns: 'nsecs', us: 'usecs', usecs: 'usecs', ms: 'msecs' };

function bounds(i: number): [string, string] {
  const low = i === 0 ? 0n : 1n << BigInt(i);
  return [low.toString(), ((1n << BigInt(i + 1)) - 1n).toString()];
}

/**
 * Two log2 histograms on one scale: each slot's bounds, both counts, and two
 * bars (before '*', after '#') of the slot's share of its run's samples, so
 * that runs with different sample counts compare by shape.
 */
export function formatLog2Pair(before: number[], after: number[], unit: string): string {
  const len = Math.max(before.length, after.length);
  const at = (h: number[], i: number) => h[i] ?? 0;
  let first = -1;
  let last = -1;
  for (let i = 0; i < len; i++) {
    if (at(before, i) || at(after, i)) {
      if (first < 0) first = i;
      last = i;
    }
  }
  if (first < 0) return '';
  const nb = before.reduce((a, b) => a + b, 0) || 1;
  const na = after.reduce((a, b) => a + b, 0) || 1;
  let maxShare = 0;
  for (let i = first; i <= last; i++) maxShare = Math.max(maxShare, at(before, i) / nb, at(after, i) / na);
  const W = 20;
  const bar = (share: number, ch: string) => {
    const n = Math.round((share / maxShare) * W);
    return ch.repeat(n) + ' '.repeat(W - n);
  };
  const width = last > 32 ? 20 : 10;
  let out = `${' '.repeat(width - 5)}${(SLOT_LABEL[unit] ?? unit).padEnd(width + 9)} : ${'before'.padStart(9)} ${'after'.padStart(9)}  |${'before (*)'.padEnd(W)}|${'after (#)'.padEnd(W)}|\n`;
  for (let i = first; i <= last; i++) {
    const [lo, hi] = bounds(i);
    out += `${lo.padStart(width)} -> ${hi.padEnd(width)} : ${String(at(before, i)).padStart(9)} ${String(at(after, i)).padStart(9)}  |${bar(at(before, i) / nb, '*')}|${bar(at(after, i) / na, '#')}|\n`;
  }
  return out;
}

function verdictText(h: HistChange): string {
  const time = TIME_UNITS[h.unit] !== undefined;
  const n = `before ${formatCount(h.before_n)}, after ${formatCount(h.after_n)} samples`;
  switch (h.verdict) {
    case 'too-few-samples': return `${n}: too few samples to judge (at least ${MIN_SAMPLES} per side)`;
    case 'no-change': return `${n}: no significant change (Mann-Whitney p = ${h.p_value.toPrecision(2)}, Cliff's delta ${h.cliffs_delta.toFixed(2)})`;
    default: {
      const word = time ? ` (${h.verdict === 'higher' ? 'slower' : 'faster'})` : '';
      return `${n}: shifted ${h.verdict}${word}: Mann-Whitney p ${h.p_value < 1e-12 ? '< 1e-12' : `= ${h.p_value.toPrecision(2)}`}, Cliff's delta ${h.cliffs_delta > 0 ? '+' : ''}${h.cliffs_delta.toFixed(2)}`;
    }
  }
}

function renderText(a: SavedRun, b: SavedRun, rows: RowChange[], all: boolean, color: ChalkInstance): string {
  const noun = a.schema.rows?.noun ?? 'run';
  let out = `${color.bold(`rbtrace ${a.tool}`)}: before ${describeRun(files[0], a)}\n${' '.repeat(a.tool.length + 9)}after  ${describeRun(files[1], b)}\n`;
  const optsA = JSON.stringify(a.options);
  const optsB = JSON.stringify(b.options);
  if (optsA !== optsB) out += color.yellow(`note: the runs had different options: ${escapeArg(optsA)} vs ${escapeArg(optsB)}`) + '\n';
  if (a.kernel !== b.kernel) out += color.yellow(`note: different kernels: ${escapeArg(a.kernel)} vs ${escapeArg(b.kernel)}`) + '\n';
  out += '\n';
  const changed = all ? rows : rows.filter(rowChanged);
  // Rows come largest change first: the first SHOWN_ROWS are the ones to read.
  const shown = all ? changed : changed.slice(0, SHOWN_ROWS);
  const body: string[][] = [];
  for (const r of shown) {
    let first = true;
    const label = r.label === '' ? '(whole run)' : escapeArg(r.label) + (r.presence === 'before-only' ? ' (gone)' : r.presence === 'after-only' ? ' (new)' : '');
    for (const f of r.fields) {
      if (f.before === 0 && f.after === 0) continue;
      if (!all && f.change === 0) continue;
      const [abs, pct] = changeText(r, f);
      body.push([first ? label : '', f.field.replace(/_ns$/, ''), value(f, f.before), value(f, f.after), abs, pct]);
      first = false;
    }
  }
  if (body.length) out += renderTable([noun.toUpperCase(), 'FIGURE', 'BEFORE', 'AFTER', 'CHANGE', '%'], body, { align: ['left', 'left', 'right', 'right', 'right', 'right'], color });
  else out += 'no figure changed\n';
  if (!out.endsWith('\n')) out += '\n';
  const more = changed.length - shown.length;
  if (more > 0) out += color.dim(`(${plural(more, noun)} more changed, left out; --all shows every one, --json lists them)`) + '\n';
  const same = rows.length - changed.length;
  if (same > 0) out += color.dim(`(${plural(same, noun)} unchanged${a.schema.rows?.durations?.length ? ' but for times' : ''}; --all shows them)`) + '\n';
  // The histograms of the rows in the table, then those of unchanged rows
  // with too few samples to judge (so that "unchanged" is not read as
  // "judged the same"), at most SHOWN_ROWS of those.
  const inTable = new Set(shown);
  let unjudged = 0;
  let unjudgedLeft = 0;
  for (const r of rows) {
    for (const h of r.histograms) {
      if (!all && !inTable.has(r)) {
        if (h.verdict !== 'too-few-samples' || rowChanged(r)) continue;
        if (++unjudged > SHOWN_ROWS) {
          unjudgedLeft++;
          continue;
        }
      }
      const name = `${r.label === '' ? '' : `${escapeArg(r.label)} `}${h.field} (${h.unit})`;
      out += `\n${color.bold(name)}: ${verdictText(h)}\n`;
      out += formatLog2Pair(h.before, h.after, h.unit);
    }
  }
  if (unjudgedLeft > 0) out += color.dim(`\n(${unjudgedLeft} more histograms with too few samples to judge, left out; --all shows every one)`) + '\n';
  if (rows.some((r) => r.histograms.length)) {
    out += color.dim(`\n(a histogram shift is a change when Mann-Whitney p < ${ALPHA} and |Cliff's delta| >= ${MIN_EFFECT}; see man rbtrace-diff)`) + '\n';
  }
  return out;
}

function toJson(a: SavedRun, b: SavedRun, rows: RowChange[]): object {
  const run = (file: string, d: SavedRun) => ({ file, started: d.started, duration_s: d.duration_s, command: d.command, pid: d.pid, kernel: d.kernel, options: d.options });
  return {
    format: 'rbtrace-diff', version: 1, tool: a.tool, before: run(files[0], a), after: run(files[1], b),
    rows: rows.map((r) => ({
      label: r.label, presence: r.presence, changed: rowChanged(r), fields: r.fields,
      histograms: r.histograms.map((h) => {
        const len = Math.max(h.before.length, h.after.length);
        const buckets = [];
        for (let i = 0; i < len; i++) {
          const [lo, hi] = bounds(i);
          if (h.before[i] || h.after[i]) buckets.push({ low: Number(lo), high: Number(hi), before: h.before[i] ?? 0, after: h.after[i] ?? 0 });
        }
        return {
          field: h.field, unit: h.unit, before_n: h.before_n, after_n: h.after_n, verdict: h.verdict,
          p_value: Number.isNaN(h.p_value) ? null : h.p_value, cliffs_delta: Number.isNaN(h.cliffs_delta) ? null : h.cliffs_delta, buckets,
        };
      }),
    })),
  };
}

export default defineTool<DiffOptions>({
  name: 'diff',
  summary: 'compare two runs saved with --save: figures side by side, histograms shifted or not',
  traces: false,
  help: `Examples:
  rbtrace mallocstat --save before.json -- ./bench
  rbtrace mallocstat --save after.json -- ./bench      (after changing the code)
  rbtrace diff before.json after.json
  rbtrace diff --json before.json after.json | jq '.rows[0]'`,
  options(cmd: Command) {
    cmd
      .usage('[options] BEFORE.json AFTER.json')
      .argument('<before>', 'a run saved with --save')
      .argument('<after>', 'a later run of the same tool')
      // --json (one JSON document), -v and --no-color are the global options.
      .option('--all', `every row: also those past the first ${SHOWN_ROWS} changed ones, and the rows and figures that did not change`)
      .hook('preAction', (c) => {
        files = c.args.slice(0, 2);
      });
  },
  run(ctx, opts) {
    const [fa, fb] = files;
    const a = readDocument(fa, 'BEFORE');
    const b = readDocument(fb, 'AFTER');
    if (a.tool !== b.tool) throw new UsageError(`${fa} is a ${a.tool} run, ${fb} a ${b.tool} run`, 'compare two runs of one tool');
    if (a.schema.rows?.array !== b.schema.rows?.array) {
      throw new UsageError(`${fa} has ${a.schema.rows?.array ?? 'no rows'}, ${fb} has ${b.schema.rows?.array ?? 'no rows'}`, 'compare runs made with the same options (e.g. both with or both without -P)');
    }
    const rows = compareFigures(a.schema, a.figures, b.figures);
    if (opts.json) ctx.out.record(toJson(a, b, rows));
    else ctx.out.write(renderText(a, b, rows, Boolean(opts.all), ctx.color));
  },
});
