// rubycalls' views: rows (collect.ts) as bcc ucalls' table (with -L the
// time columns and a histogram per shown method), NDJSON records, saved
// figures, and the line that says why Ruby methods are missing. Pure.
import { renderTable } from '../../core/output/table.js';
import { term } from '../../core/output/format.js';
import { formatLog2Hist, log2HistToJson } from '../../core/output/histogram.js';
import { topRows } from '../syscount/views.js';
import { sharePct } from '../../core/bpf/usdt-windows.js';
import type { CallRow } from './collect.js';
import type { VmEventFlags } from './vmflags.js';

export interface ViewMode {
  byProcess: boolean;
  latency: boolean;
  top: number;
  /** Probes live in time windows only (--window): a SHARE column, each row's part of all calls seen. */
  windows?: boolean;
}

/** All calls seen (every row, not only those shown): what SHARE is a percent of. */
const totalCount = (all: CallRow[]): number => all.reduce((a, x) => a + x.count, 0);

const usecs = (ns: number) => (ns / 1000).toFixed(3);

export function shownCalls(rows: CallRow[], mode: ViewMode): { shown: CallRow[]; omitted: number } {
  return topRows(rows, mode.latency, mode.top);
}

export function callsText(shown: CallRow[], mode: ViewMode, all: CallRow[] = shown): string {
  const total = totalCount(all);
  const headers = [...(mode.byProcess ? ['PID'] : []), 'METHOD', 'TYPE', 'CALLS', ...(mode.latency ? ['TIME (us)', 'AVG (us)'] : []), ...(mode.windows ? ['SHARE'] : [])];
  const body = shown.map((r) => [...(mode.byProcess ? [r.pid ?? 0] : []), r.method, r.kind === 'c' ? 'C' : 'Ruby', r.count,
    ...(mode.latency ? [usecs(r.total_ns), r.timed ? usecs(r.total_ns / r.timed) : '-'] : []), ...(mode.windows ? [`${sharePct(r.count, total).toFixed(1)} %`] : [])]);
  let text = renderTable(headers, body, { align: [...(mode.byProcess ? ['right' as const] : []), 'left', 'left', 'right', 'right', 'right'] });
  if (mode.latency) {
    for (const r of shown) {
      if (!r.timed) continue;
      text += term`\n${r.method}${mode.byProcess ? ` (pid ${r.pid})` : ''}: ${r.timed} timed calls\n`;
      text += formatLog2Hist(r.hist, 'nsecs');
    }
  }
  return text;
}

export function callsRecord(when: { time: Date; intervalS: number }, shown: CallRow[], omitted: number, mode: ViewMode, notes: string[],
  all: CallRow[] = shown, windows?: object): object {
  const total = totalCount(all);
  return {
    time: when.time.toISOString(), interval_s: when.intervalS,
    ...(windows ? { windows } : {}),
    methods: shown.map((r) => ({
      ...(r.pid !== undefined ? { pid: r.pid } : {}), method: r.method, kind: r.kind, count: r.count,
      ...(mode.windows ? { share_pct: sharePct(r.count, total) } : {}),
      ...(mode.latency ? { timed: r.timed, total_ns: r.total_ns, hist: log2HistToJson(r.hist) } : {}),
    })),
    omitted,
    ...(notes.length ? { notes } : {}),
  };
}

export function callsFigures(rows: CallRow[], latency: boolean): object {
  return { methods: rows.map((r) => ({ method: r.method, kind: r.kind, pid: r.pid, count: r.count, total_ns: latency ? r.total_ns : undefined, hist: latency ? r.hist : undefined })) };
}

/** Why no Ruby-method row can appear in `pid`, or nothing if they can fire. */
export function rubyProbesNote(pid: number, flags: VmEventFlags | undefined, sawRuby: boolean): string | undefined {
  if (sawRuby || flags?.rubyProbesFire) return undefined;
  const state = flags ? `ruby_vm_event_flags 0x${flags.now.toString(16)}, read from the process` : 'the VM\'s flags could not be read: the process ended first';
  return `process ${pid}: no method written in Ruby was seen: ruby:method__entry fires only while a TracePoint for :call/:return is enabled in the process ` +
    `(${state}; Ruby bug #14582); methods written in C are counted all the same. ` +
    'To count Ruby methods, enable one in the program, e.g. `TracePoint.new(:call, :return) {}.enable` (at a cost), or run it with `ruby -r ./tp.rb`.';
}
