// runqlat's views: readings (collect.ts) as bcc runqlat's histograms, the
// table of worst waits (--max), NDJSON records and saved figures. Pure: no
// map, no /proc, no clock.
import { term } from '../../core/output/format.js';
import { renderTable } from '../../core/output/table.js';
import { formatLog2Hist, log2HistToJson } from '../../core/output/histogram.js';
import type { RunqHistRow, WorstWait } from './collect.js';
import type { Split } from './probe.js';

export interface ViewMode {
  split: Split;
  ms: boolean;
}

export function unitName(ms: boolean): string {
  return ms ? 'msecs' : 'usecs';
}

function label(r: RunqHistRow, split: Split): string {
  if (split === 'process') return term`pid = ${r.id} ${r.comm}`;
  if (split === 'thread') return term`tid = ${r.id} ${r.comm}`;
  if (split === 'cgroup') return term`cgroup = ${r.cgroup}`;
  return '';
}

export function histText(rows: RunqHistRow[], mode: ViewMode): string {
  if (rows.length === 0) return '\nNo task waited on a run queue.\n';
  let text = '';
  for (const r of rows) {
    const what = label(r, mode.split);
    const avg = (r.total_ns / r.count / (mode.ms ? 1e6 : 1e3)).toFixed(mode.ms ? 3 : 1);
    text += `\n${what ? `${what}, ` : ''}count = ${r.count}, avg = ${avg} ${mode.ms ? 'ms' : 'us'}, total = ${(r.total_ns / 1e6).toFixed(3)} ms\n`;
    text += formatLog2Hist(r.hist, unitName(mode.ms));
  }
  return text;
}

/** --max: the worst waits, the task that waited and the one switched out for it. */
export function worstText(waits: WorstWait[]): string {
  if (waits.length === 0) return '';
  const body = waits.map((w) => [(w.wait_ns / 1e3).toFixed(1), w.cpu, w.pid, w.comm, w.prev_pid, w.prev_comm]);
  return `\nWorst run-queue waits (waiting task, and the task that ran until it got the CPU):\n${renderTable(['WAIT (us)', 'CPU', 'PID', 'COMM', 'PREV PID', 'PREV COMM'], body, { align: ['right', 'right', 'right', 'left', 'right', 'left'] })}`;
}

function rowJson(r: RunqHistRow, split: Split): object {
  const id = split === 'process' ? { pid: r.id, comm: r.comm } : split === 'thread' ? { tid: r.id, comm: r.comm } : split === 'cgroup' ? { cgroup: r.cgroup, cgroup_id: r.id } : {};
  return { ...id, count: r.count, total_ns: r.total_ns, max_ns: r.max_ns, hist: log2HistToJson(r.hist) };
}

export function record(when: { time: Date; intervalS: number }, rows: RunqHistRow[], waits: WorstWait[] | undefined, mode: ViewMode): object {
  return {
    time: when.time.toISOString(), interval_s: when.intervalS, unit: unitName(mode.ms),
    hists: rows.map((r) => rowJson(r, mode.split)),
    ...(waits ? { worst: waits } : {}),
  };
}

/** Figures for --save/--assert (common/figures.ts RUNQLAT): rows by name, not by id. */
export function figures(rows: RunqHistRow[]): object {
  return { hists: rows.map((r) => ({ comm: r.comm, cgroup: r.cgroup, count: r.count, total_ns: r.total_ns, max_ns: r.max_ns, hist: r.hist })) };
}
