// profile's views: a Profile (collect.ts) as the top-N table, folded stacks,
// an NDJSON record, the flame graph's input (flamegraph.ts draws it) and the
// end-of-run notes. No map access here.
import { basename } from 'node:path';
import { escapeForTerminal, plural } from '../../core/output/format.js';
import { frameJson, frameLabel, stackErrorsNote, type Frame } from '../../core/stacks/index.js';
import type { FoldedStack } from '../../core/stacks/flamegraph.js';
import type { Profile } from './collect.js';

/** The table: the top stacks, innermost frame first. */
export function writeTable(line: (s?: string) => void, c: { bold(s: string): string; dim(s: string): string }, p: Profile, top: number): void {
  line();
  if (p.samples === 0) {
    line('No samples (the target used no CPU while sampled).');
    return;
  }
  const shown = p.stacks.slice(0, top);
  line(`${plural(p.samples, 'sample')} in ${plural(p.stacks.length, 'distinct stack')}; the top ${shown.length}, innermost frame first:`);
  for (const s of shown) {
    line();
    const pids = s.pids.length === 1 ? `pid ${s.pids[0]}` : `${s.pids.length} processes`;
    line(c.bold(`${plural(s.count, 'sample')} (${((100 * s.count) / p.samples).toFixed(1)}%)  ${escapeForTerminal(s.comm)} [${pids}]`));
    for (const f of s.frames) {
      const where = f.kernel ? '[k]' : f.module ? basename(f.module) : '';
      line(`    ${escapeForTerminal(f.name)}${where ? c.dim(`  ${escapeForTerminal(where)}`) : ''}`);
    }
    if (s.truncated) line(c.dim('    ... (probably cut short: code without frame pointers)'));
  }
}

/** --folded: "comm;outer;...;inner count" lines, sorted, escaped. */
export function foldedLines(p: Profile): string[] {
  return p.stacks.map((s) => `${s.folded.join(';')} ${s.count}`).sort().map((l) => escapeForTerminal(l));
}

/** What flameGraphSvg() draws. */
export function flameStacks(p: Profile): FoldedStack[] {
  return p.stacks.map((s) => ({ frames: s.folded, count: s.count }));
}

/** --json: the one record of a run. */
export function profileRecord(p: Profile, run: { time: Date; hz: number; cpus: number; seconds: number }): object {
  return {
    time: run.time.toISOString(), frequency_hz: run.hz, cpus: run.cpus, seconds: Number(run.seconds.toFixed(3)), samples: p.samples,
    stack_errors: p.stackErrors, dropped: p.dropped,
    stacks: p.stacks.map((s) => ({ comm: s.comm, pids: s.pids, count: s.count, truncated: s.truncated, frames: s.frames.map(frameJson) })),
  };
}

/** The warnings after a text report: what is missing from it, and why. */
export function profileNotes(p: Profile, extra: { kernelHidden?: string | false; svg?: string }): string[] {
  const notes: string[] = [];
  if (p.stackErrors) notes.push(stackErrorsNote(p.stackErrors));
  if (p.dropped) notes.push(`${plural(p.dropped, 'sample')} not counted (${p.droppedWhy ?? 'more than the distinct stacks rbtrace keeps'})`);
  if (extra.kernelHidden) notes.push(`kernel frames unnamed: ${extra.kernelHidden}`);
  if (extra.svg !== undefined) notes.push(`flame graph written to ${extra.svg}`);
  return notes.map(escapeForTerminal);
}

/** One function's row: self (innermost frame) and total (anywhere on the stack, once per sample), in samples. */
export interface FunctionRow {
  function: string;
  self: number;
  total: number;
}

/**
 * A frame's function: its folded label, less a Ruby frame's line
 * (`Foo#bar (app.rb:12)` -> `Foo#bar_(app.rb)`), so the lines of one method
 * are one row.
 */
export function functionOf(f: Frame): string {
  return frameLabel(f).replace(/_\(([^()]*):\d+\)$/, '_($1)');
}

/**
 * One row per function, by self then total. Total is counted once per sample
 * (perf report --children's rule), so a recursive function is one row and
 * never over 100 %.
 */
export function functionRows(stacks: readonly { frames: Frame[]; count: number }[]): FunctionRow[] {
  const rows = new Map<string, FunctionRow>();
  const rowOf = (name: string): FunctionRow => {
    let r = rows.get(name);
    if (!r) rows.set(name, (r = { function: name, self: 0, total: 0 }));
    return r;
  };
  for (const s of stacks) {
    const names = s.frames.map(functionOf);
    if (names.length) rowOf(names[0]).self += s.count;
    for (const name of new Set(names)) rowOf(name).total += s.count;
  }
  return [...rows.values()].sort((a, b) => b.self - a.self || b.total - a.total || (a.function < b.function ? -1 : 1));
}

/** --functions: the table of functionRows() by total (perf report --children's order), `top` rows. */
export function writeFunctions(line: (s?: string) => void, c: { bold(s: string): string }, p: Profile, top: number): void {
  line();
  if (p.samples === 0) {
    line('No samples (the target used no CPU while sampled).');
    return;
  }
  const rows = functionRows(p.stacks);
  const shown = [...rows].sort((a, b) => b.total - a.total || b.self - a.self).slice(0, top);
  line(`${plural(p.samples, 'sample')} in ${plural(rows.length, 'function')}; the top ${shown.length} by total (self: innermost frame):`);
  line();
  line(c.bold(`${'TOTAL'.padStart(7)} ${'SELF'.padStart(7)}  FUNCTION`));
  const pct = (n: number): string => `${((100 * n) / p.samples).toFixed(1)}%`.padStart(7);
  for (const r of shown) line(`${pct(r.total)} ${pct(r.self)}  ${escapeForTerminal(r.function)}`);
}

/** Figures for --save/--assert/diff (common/figures.ts PROFILE): the rows of --functions. */
export function profileFigures(p: Profile): { samples: number; functions: FunctionRow[] } {
  return { samples: p.samples, functions: functionRows(p.stacks) };
}

/** -v after an --unwind dwarf run: how far stacks were walked, and at what cost. */
export function dwarfNote(s: { samples: number; complete: number; ruby: number; stackBytes: number; cpuMs: number }): string {
  const per = Math.max(1, s.samples);
  return `--unwind dwarf: ${plural(s.samples, 'sample')}, ${s.complete} unwound to the outermost frame, ${s.ruby} with Ruby frames, `
    + `${(s.stackBytes / per).toFixed(0)} stack bytes and ${((1000 * s.cpuMs) / per).toFixed(0)} us of user-space CPU per sample`;
}
