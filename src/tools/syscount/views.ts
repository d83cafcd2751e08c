// syscount's views: a reading (collect.ts) as bcc syscount's table, strace
// -c -w's table, log2 histograms, NDJSON records and saved figures. No map
// access here: everything comes in as rows.
import { renderTable } from '../../core/output/table.js';
import { term } from '../../core/output/format.js';
import { formatLog2Hist, log2HistToJson } from '../../core/output/histogram.js';
import { formatStraceTable, sortStraceRows } from '../../core/output/strace-table.js';
import { cgroupColumns, type CgroupFields } from '../../core/linux/cgroup.js';
import type { ProcessRow, SyscallRow, UnfinishedRow } from './collect.js';

/** How a report looks, from the options (index.ts resolveMode). */
export interface ViewMode {
  byProcess: boolean;
  latency: boolean;
  hist: boolean;
  strace: boolean;
  top: number; // Infinity for all
  /** Of TIME and AVG: bcc's default us, or ms (-m). */
  timeUnit: 'us' | 'ms';
}

/** Sort and cut to the top N: by time with latency, else by count. */
export function topRows<T extends { count: number; total_ns: number }>(rows: T[], byTime: boolean, top: number): { shown: T[]; omitted: number } {
  const key = (r: T) => (byTime ? r.total_ns : r.count);
  const sorted = [...rows].sort((a, b) => key(b) - key(a) || b.count - a.count);
  const shown = Number.isFinite(top) ? sorted.slice(0, top) : sorted;
  return { shown, omitted: sorted.length - shown.length };
}

/** The syscall rows a report shows: strace's order with --strace, else topRows'. */
export function shownSyscalls(rows: SyscallRow[], mode: ViewMode): { shown: SyscallRow[]; omitted: number } {
  if (!mode.strace) return topRows(rows, mode.latency, mode.top);
  const sorted = sortStraceRows(rows.map((r) => ({ ...r, calls: r.count })));
  const shown = Number.isFinite(mode.top) ? sorted.slice(0, mode.top) : sorted;
  return { shown, omitted: sorted.length - shown.length };
}

function inUnit(ns: number, unit: ViewMode['timeUnit']): string {
  return (ns / (unit === 'ms' ? 1e6 : 1e3)).toFixed(3);
}

/** bcc syscount's layout, plus an ERRORS column and, with -L, the average. */
export function formatSyscallTable(rows: SyscallRow[], latency: boolean, unit: ViewMode['timeUnit'] = 'us'): string {
  const headers = ['SYSCALL', 'COUNT', 'ERRORS', ...(latency ? [`TIME (${unit})`, `AVG (${unit})`] : [])];
  const body = rows.map((r) => [r.name, r.count, r.errors, ...(latency ? [inUnit(r.total_ns, unit), inUnit(r.total_ns / r.count, unit)] : [])]);
  return renderTable(headers, body, { align: ['left', 'right', 'right', 'right', 'right'] });
}

/** -P: with CGROUP (--cgroup) and CONTAINER (when a row is in one) columns (src/core/linux/cgroup.ts). */
export function formatProcessTable(rows: (ProcessRow & CgroupFields)[], latency: boolean, withCgroup = false, unit: ViewMode['timeUnit'] = 'us'): string {
  const cg = cgroupColumns(rows, { cgroup: withCgroup });
  const headers = ['PID', 'COMM', ...cg.headers, 'COUNT', 'ERRORS', ...(latency ? [`TIME (${unit})`, `AVG (${unit})`] : [])];
  const body = rows.map((r) => [r.pid, r.comm, ...cg.cells(r), r.count, r.errors, ...(latency ? [inUnit(r.total_ns, unit), inUnit(r.total_ns / r.count, unit)] : [])]);
  return renderTable(headers, body, { align: ['right', 'left', ...cg.headers.map(() => 'left' as const), 'right', 'right', 'right', 'right'] });
}

/** The per-syscall text report: the table, then with --hist one histogram per shown syscall. */
export function syscallText(shown: SyscallRow[], mode: ViewMode): string {
  let text = mode.strace
    ? formatStraceTable(shown.map((r) => ({ name: r.name, calls: r.count, errors: r.errors, total_ns: r.total_ns })))
    : formatSyscallTable(shown, mode.latency, mode.timeUnit);
  if (mode.hist) {
    for (const r of shown) {
      text += term`\nsyscall = ${r.name}, count = ${r.count}, errors = ${r.errors}, avg = ${inUnit(r.total_ns / r.count, mode.timeUnit)} ${mode.timeUnit}\n`;
      text += formatLog2Hist(r.hist!, 'nsecs');
    }
  }
  return text;
}

/** One NDJSON record of a per-syscall report: the shown rows, and totals over every row. */
export function syscallRecord(when: { time: Date; intervalS: number }, rows: SyscallRow[], shown: SyscallRow[], omitted: number, latency: boolean,
  unfinished: UnfinishedRow[] = []): object {
  const total = rows.reduce((t, r) => ({ count: t.count + r.count, errors: t.errors + r.errors, total_ns: t.total_ns + r.total_ns }), { count: 0, errors: 0, total_ns: 0 });
  return {
    time: when.time.toISOString(), interval_s: when.intervalS,
    syscalls: shown.map((r) => ({
      name: r.name, nr: r.nr, count: r.count, errors: r.errors,
      ...(latency ? { total_ns: r.total_ns, avg_ns: Math.round(r.total_ns / r.count) } : {}),
      ...(r.hist ? { hist: log2HistToJson(r.hist) } : {}),
    })),
    total: latency ? total : { count: total.count, errors: total.errors },
    omitted,
    ...(unfinished.length ? { unfinished: Object.fromEntries(unfinished.map((u) => [u.name, u.count])) } : {}),
  };
}

/** -v: the calls left out because they never returned, as strace -c leaves them out. */
export function unfinishedLine(unfinished: UnfinishedRow[]): string | undefined {
  if (!unfinished.length) return undefined;
  const total = unfinished.reduce((t, u) => t + u.count, 0);
  const which = unfinished.map((u) => `${u.name} ${u.count}`).join(', ');
  return `not counted: ${total} call${total === 1 ? '' : 's'} that never returned to user space (${which}): the thread died in ${total === 1 ? 'it' : 'them'} (a fatal signal, or another thread's exit_group or execve), and strace -c counts returns`;
}

/** One NDJSON record of a per-process report (-P). */
export function processRecord(when: { time: Date; intervalS: number }, shown: (ProcessRow & CgroupFields)[], omitted: number, latency: boolean): object {
  return {
    time: when.time.toISOString(), interval_s: when.intervalS,
    processes: shown.map((r) => ({ pid: r.pid, comm: r.comm, cgroup: r.cgroup, container: r.container, count: r.count, errors: r.errors, ...(latency ? { total_ns: r.total_ns } : {}) })),
    omitted,
  };
}

/** Figures for --save/--assert (common/figures.ts SYSCOUNT): every row, time only when measured. */
export function syscallFigures(rows: SyscallRow[], latency: boolean): object {
  return { syscalls: rows.map((r) => ({ ...r, total_ns: latency ? r.total_ns : undefined })) };
}

export function processFigures(rows: ProcessRow[], latency: boolean): object {
  return { processes: rows.map((r) => ({ ...r, total_ns: latency ? r.total_ns : undefined })) };
}
