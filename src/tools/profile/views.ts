// profile's views: a Profile (collect.ts) as the top-N table, folded stacks,
// an NDJSON record, the flame graph's input (flamegraph.ts draws it) and the
// end-of-run notes. No map access here.
import { basename } from 'node:path';
import { escapeForTerminal, plural } from '../../core/output/format.js';
import { frameJson, frameLabel } from '../../core/stacks/index.js';
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
  if (p.stackErrors) notes.push(`${plural(p.stackErrors, 'stack')} not captured (stack map full or hash collisions)`);
  if (p.dropped) notes.push(`${plural(p.dropped, 'sample')} not counted (more than the distinct stacks rbtrace keeps)`);
  if (extra.kernelHidden) notes.push(`kernel frames unnamed: ${extra.kernelHidden}`);
  if (extra.svg !== undefined) notes.push(`flame graph written to ${extra.svg}`);
  return notes.map(escapeForTerminal);
}

/**
 * Figures for --save/--assert/diff (common/figures.ts PROFILE): per function,
 * self (innermost frame) and total (anywhere on the stack, once per sample).
 */
export function profileFigures(p: Profile): { samples: number; functions: { function: string; self: number; total: number }[] } {
  const rows = new Map<string, { function: string; self: number; total: number }>();
  const rowOf = (name: string) => {
    let r = rows.get(name);
    if (!r) rows.set(name, (r = { function: name, self: 0, total: 0 }));
    return r;
  };
  for (const s of p.stacks) {
    const names = s.frames.map(frameLabel);
    if (names.length) rowOf(names[0]).self += s.count;
    for (const name of new Set(names)) rowOf(name).total += s.count;
  }
  const functions = [...rows.values()].sort((a, b) => b.self - a.self || b.total - a.total || (a.function < b.function ? -1 : 1));
  return { samples: p.samples, functions };
}
