// biolatency's views: readings (collect.ts) as bcc biolatency's histograms,
// bcc biosnoop's lines (--events), NDJSON records and saved figures. Pure:
// no map, no /sys, no clock.
import { term } from '../../core/output/format.js';
import { formatLog2Hist, log2HistToJson, log2Slot } from '../../core/output/histogram.js';
import type { BioEventRow, BioHistRow } from './collect.js';

export interface ViewMode {
  ms: boolean;      // -m
  queued: boolean;  // -Q
}

export function unitName(ms: boolean): string {
  return ms ? 'msecs' : 'usecs';
}

function avg(r: { count: number; total_ns: number }, ms: boolean): string {
  return (r.total_ns / r.count / (ms ? 1e6 : 1e3)).toFixed(ms ? 3 : 1);
}

/** The histograms of a report: bcc's layout, each under a line naming its disk and operation. */
export function histText(rows: BioHistRow[], mode: ViewMode): string {
  let text = '';
  for (const r of rows) {
    const label = [r.disk !== undefined ? term`disk = ${r.disk}` : '', r.op !== undefined ? `op = ${r.op}` : ''].filter(Boolean).join(', ');
    text += `\n${label ? `${label}, ` : ''}count = ${r.count}, avg = ${avg(r, mode.ms)} ${mode.ms ? 'ms' : 'us'}\n`;
    text += formatLog2Hist(r.hist, unitName(mode.ms));
  }
  return text || '\nNo block I/O completed.\n';
}

export function histRecord(when: { time: Date; intervalS: number }, rows: BioHistRow[], mode: ViewMode, untracked: number): object {
  return {
    time: when.time.toISOString(), interval_s: when.intervalS, unit: unitName(mode.ms), queued: mode.queued,
    hists: rows.map((r) => ({ disk: r.disk, op: r.op, count: r.count, total_ns: r.total_ns, bytes: r.bytes, hist: log2HistToJson(r.hist) })),
    untracked,
  };
}

/** Figures for --save/--assert (common/figures.ts BIOLATENCY). */
export function histFigures(rows: BioHistRow[]): object {
  return { hists: rows.map((r) => ({ disk: r.disk, op: r.op, count: r.count, total_ns: r.total_ns, bytes: r.bytes, hist: r.hist })) };
}

/** The same figures from --events' records, per disk and operation. */
export function eventFigures(events: BioEventRow[], ms: boolean): object {
  const byKey = new Map<string, BioHistRow>();
  for (const e of events) {
    const id = `${e.disk}\0${e.op}`;
    let r = byKey.get(id);
    if (!r) byKey.set(id, (r = { disk: e.disk, op: e.op, count: 0, total_ns: 0, bytes: 0, hist: [] }));
    r.count++;
    r.total_ns += e.latency_ns;
    r.bytes += e.bytes;
    const slot = log2Slot(Math.floor(e.latency_ns / (ms ? 1e6 : 1e3)));
    while (r.hist.length <= slot) r.hist.push(0);
    r.hist[slot]++;
  }
  return histFigures([...byKey.values()]);
}

const OP_LETTER: Record<string, string> = { read: 'R', write: 'W', flush: 'F', discard: 'D', 'secure-erase': 'E', 'write-zeroes': 'Z' };

/** bcc biosnoop's header; -Q adds the queued time. */
export function eventHeader(queued: boolean): string {
  return `${'TIME(s)'.padEnd(11)} ${'COMM'.padEnd(14)} ${'PID'.padEnd(7)} ${'DISK'.padEnd(9)} T ${'SECTOR'.padEnd(12)} ${'BYTES'.padEnd(7)} ${queued ? `${'QUE(ms)'.padStart(7)} ` : ''}LAT(ms)\n`;
}

/** One biosnoop line; `t0` is the first event's time (bcc's TIME(s) starts at 0). */
export function eventLine(e: BioEventRow, t0: number, queued: boolean): string {
  const time = ((e.ts_ns - t0) / 1e9).toFixed(6).padEnd(11);
  const que = queued ? `${(e.queued_ns / 1e6).toFixed(2).padStart(7)} ` : '';
  const err = e.error ? ` error ${e.error}` : '';
  return term`${time} ${e.comm.padEnd(14)} ${String(e.pid).padEnd(7)} ${e.disk.padEnd(9)} ${OP_LETTER[e.op] ?? '?'} ${String(e.sector).padEnd(12)} ${String(e.bytes).padEnd(7)} ${que}${(e.latency_ns / 1e6).toFixed(2).padStart(7)}${err}\n`;
}

export function eventRecord(e: BioEventRow): object {
  return {
    ts_ns: e.ts_ns, comm: e.comm, pid: e.pid, disk: e.disk, op: e.op, sector: e.sector, bytes: e.bytes,
    latency_ns: e.latency_ns, queued_ns: e.queued_ns, ...(e.error ? { error: e.error } : {}),
  };
}
