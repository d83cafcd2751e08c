// gcstat's views: rows (collect.ts) as a table, the live charts of RSS and GC
// time, log2 histograms and NDJSON records. No map, no /proc, no clock.
import { formatLog2Hist, log2HistToJson } from '../../core/output/histogram.js';
import { formatBytes } from '../../core/output/format.js';
import { ColumnPrinter } from '../../core/output/table.js';
import { LiveChart } from '../../core/output/chart.js';
import type { GcPhaseName, PhaseStats } from './collect.js';
import type { Collection } from './collections.js';

/** One row: a process during one interval, as --json prints it. */
export interface GcRow {
  time: string;
  pid: number;
  comm: string;
  mark: PhaseStats;
  sweep: PhaseStats;
  /** Collections begun in the interval (gc__mark__begin), and of them major and minor (null: the VM's layout is unknown). */
  collections: number;
  major: number | null;
  minor: number | null;
  /** VmRSS from /proc/PID/status at the end of the interval (null: process gone). */
  rss_bytes: number | null;
  /** VmHWM: the peak RSS so far. */
  rss_peak_bytes: number | null;
}

const ms = (ns: number) => (ns / 1e6).toFixed(2);

export function gcPrinter(): ColumnPrinter {
  return new ColumnPrinter([
    { name: 'TIME', width: 8 }, { name: 'PID', width: 7, align: 'right' }, { name: 'COMM', width: 12 },
    { name: 'GCS', width: 4, align: 'right' }, { name: 'MAJOR', width: 5, align: 'right' },
    { name: 'MARK#', width: 6, align: 'right' }, { name: 'MARK ms', width: 8, align: 'right' },
    { name: 'AVG', width: 8, align: 'right' }, { name: 'MAX', width: 8, align: 'right' },
    { name: 'SWEEP#', width: 6, align: 'right' }, { name: 'SWEEP ms', width: 8, align: 'right' },
    { name: 'AVG', width: 8, align: 'right' }, { name: 'MAX', width: 8, align: 'right' },
    { name: 'RSS', width: 10, align: 'right' },
  ]);
}

/** The table's lines for one interval. */
export function gcRowsText(printer: ColumnPrinter, time: string, rows: GcRow[]): string {
  const avg = (s: PhaseStats) => (s.count ? ms(s.total_ns / s.count) : '-');
  return rows.map((r) => printer.row([time, r.pid, r.comm, r.collections, r.major ?? '?', r.mark.count, ms(r.mark.total_ns), avg(r.mark), ms(r.mark.max_ns),
    r.sweep.count, ms(r.sweep.total_ns), avg(r.sweep), ms(r.sweep.max_ns), r.rss_bytes === null ? '-' : formatBytes(r.rss_bytes)])).join('');
}

/** The two live charts (RSS, GC time per interval) and their footer. */
export class GcCharts {
  private readonly rss: LiveChart;
  private readonly gc: LiveChart;
  private lines = 0;

  constructor(intervalSec: number, color: boolean) {
    this.rss = new LiveChart({ title: 'RSS (MiB)', series: [{ name: 'rss', color: 'cyan' }], height: 8, color });
    this.gc = new LiveChart({ title: `GC time per ${intervalSec} s interval (ms)`, series: [{ name: 'mark', color: 'green' }, { name: 'sweep', color: 'yellow' }], height: 8, color });
  }

  /** The frame for this interval, erasing the previous one. */
  frame(time: string, rows: GcRow[]): string {
    const sum = (f: (r: GcRow) => number) => rows.reduce((a, r) => a + f(r), 0);
    this.rss.push({ rss: sum((r) => r.rss_bytes ?? 0) / 1048576 });
    this.gc.push({ mark: sum((r) => r.mark.total_ns) / 1e6, sweep: sum((r) => r.sweep.total_ns) / 1e6 });
    const frame = this.rss.render() + '\n' + this.gc.render() +
      `${time}  ${rows.length} process(es), ${sum((r) => r.mark.count)} marks, ${sum((r) => r.sweep.count)} sweeps this interval (RSS from /proc)\n`;
    const out = (this.lines ? `\x1b[${this.lines}A\r\x1b[0J` : '') + frame;
    this.lines = frame.split('\n').length - 1;
    return out;
  }
}

/** A phase's histogram at exit: the NDJSON record. */
export function histRecord(phase: GcPhaseName, slots: number[]): object {
  return { time: new Date().toISOString(), histogram: phase, unit: 'usecs', hist: log2HistToJson(slots) };
}

/** A phase's histogram at exit, as text (title from the caller, bold). */
export function histText(title: string, slots: number[]): string {
  const total = slots.reduce((a, b) => a + b, 0);
  return `\n${title}: ${total} phases${total ? '' : ' (none seen)'}\n` + (total ? formatLog2Hist(slots, 'usecs') : '');
}

/** --log: one line per collection, gc_tracer's fields without loading anything into the process. */
export function collectionPrinter(): ColumnPrinter {
  return new ColumnPrinter([
    { name: 'PID', width: 7, align: 'right' }, { name: 'COMM', width: 12 }, { name: 'GC#', width: 6, align: 'right' },
    { name: 'TYPE', width: 5 }, { name: 'MAJOR_BY', width: 9 }, { name: 'GC_BY', width: 7 },
    { name: 'MARK#', width: 5, align: 'right' }, { name: 'MARK ms', width: 8, align: 'right' },
    { name: 'SWEEP#', width: 6, align: 'right' }, { name: 'SWEEP ms', width: 8, align: 'right' },
    { name: 'PAUSE ms', width: 8, align: 'right' }, { name: 'MAX ms', width: 8, align: 'right' },
  ]);
}

export function collectionText(printer: ColumnPrinter, c: Collection): string {
  const type = c.major === undefined ? '?' : c.major ? 'major' : 'minor';
  return printer.row([c.pid, c.comm, c.gc ?? '?', type, c.major_by ?? '-', c.gc_by ?? '-',
    c.mark_steps, ms(c.mark_ns), c.sweep_steps, ms(c.sweep_ns), ms(c.pause_ns), ms(c.max_pause_ns)]);
}

/** --log --json: the collection's record. */
export function collectionRecord(c: Collection): object {
  return { time: new Date().toISOString(), kind: 'collection', ...c };
}

/** A row read from the VM's counters (a ruby without USDT probes): totals, no steps. */
export interface VmRow {
  time: string;
  pid: number;
  comm: string;
  source: 'vm-counters';
  collections: number;
  major: number;
  minor: number;
  /** GC time in the interval, by the VM's own clocks (null: this version does not keep it). */
  mark_ns: number | null;
  sweep_ns: number | null;
  gc_ns: number | null;
  rss_bytes: number | null;
  rss_peak_bytes: number | null;
}

export function vmPrinter(): ColumnPrinter {
  return new ColumnPrinter([
    { name: 'TIME', width: 8 }, { name: 'PID', width: 7, align: 'right' }, { name: 'COMM', width: 12 },
    { name: 'GCS', width: 4, align: 'right' }, { name: 'MAJOR', width: 5, align: 'right' }, { name: 'MINOR', width: 5, align: 'right' },
    { name: 'MARK ms', width: 8, align: 'right' }, { name: 'SWEEP ms', width: 8, align: 'right' }, { name: 'GC ms', width: 8, align: 'right' },
    { name: 'RSS', width: 10, align: 'right' },
  ]);
}

export function vmRowsText(printer: ColumnPrinter, time: string, rows: VmRow[]): string {
  const opt = (ns: number | null) => (ns === null ? '-' : ms(ns));
  return rows.map((r) => printer.row([time, r.pid, r.comm, r.collections, r.major, r.minor, opt(r.mark_ns), opt(r.sweep_ns), opt(r.gc_ns),
    r.rss_bytes === null ? '-' : formatBytes(r.rss_bytes)])).join('');
}
