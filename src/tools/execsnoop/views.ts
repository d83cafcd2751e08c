// execsnoop's views: each exec (collect.ts) as a row of bcc execsnoop's
// streamed table, and its figure for --save/--assert. No ring buffer here:
// everything comes in as Exec records. Strings from the traced system are
// escaped as raw bytes (bytes that are not UTF-8 show as \xNN).
import { escapeBytesForTerminal, escapeForTerminal, shellQuote, styled, type Cell } from '../../core/output/format.js';
import { ColumnPrinter, type Column } from '../../core/output/table.js';
import { cgroupColumns } from '../../core/linux/cgroup.js';
import type { Exec, ExecRecord } from './collect.js';

/** The text columns the options ask for. */
export interface ExecColumns {
  time?: boolean;       // -T
  timestamp?: boolean;  // -t
  printUid?: boolean;   // -U
  quote?: boolean;      // -q
  fails?: boolean;      // -x: RET wide enough for an errno name
}

/** Turns the kernel's timestamps into the TIME columns (the session's clock). */
export interface ExecClock {
  wallTimeOf(monoNs: number): number;
  secondsSinceStart(monoNs: number): number;
}

/**
 * The ARGS column: escaped (or quoted) arguments, '...' marking cuts. Raw
 * bytes (as read from the kernel) show bytes that are not UTF-8 as \xNN.
 */
export function formatArgs(rec: { args: (string | Uint8Array)[] } & Pick<ExecRecord, 'args_cut' | 'args_truncated'>, quote: boolean): string {
  const cut = new Set(rec.args_cut ?? []);
  const parts = rec.args.map((a, i) => {
    const text = typeof a === 'string' ? escapeForTerminal(a) : escapeBytesForTerminal(a);
    const shown = quote ? shellQuote(text) : text;
    return cut.has(i) ? `${shown}...` : shown;
  });
  if (rec.args_truncated) parts.push('...');
  return parts.join(' ');
}

/**
 * The streamed table: its columns are fixed before the first exec, so a
 * CONTAINER column when the host has containers at start, CGROUP with --cgroup.
 */
export class ExecTable {
  private readonly cgCols: ReturnType<typeof cgroupColumns>;
  private readonly printer: ColumnPrinter;

  constructor(private readonly opts: ExecColumns, cgroup: { cgroup: boolean; container: boolean }, private readonly clock: ExecClock) {
    this.cgCols = cgroupColumns([], cgroup);
    const columns: Column[] = [];
    if (opts.time) columns.push({ name: 'TIME', width: 8 });
    if (opts.timestamp) columns.push({ name: 'TIME(s)', width: 8 });
    if (opts.printUid) columns.push({ name: 'UID', width: 6 });
    columns.push({ name: 'PCOMM', width: 16 }, { name: 'PID', width: 7 }, { name: 'PPID', width: 7 },
      { name: 'RET', width: opts.fails ? 6 : 3, align: 'right' }, ...this.cgCols.headers.map((name) => ({ name, width: name === 'CGROUP' ? 24 : 12 })), { name: 'ARGS', width: 0 });
    this.printer = new ColumnPrinter(columns);
  }

  header(): string {
    return this.printer.header();
  }

  row({ rec: r, comm, args }: Exec): string {
    const row: Cell[] = [];
    if (this.opts.time) row.push(new Date(this.clock.wallTimeOf(r.ts_ns)).toTimeString().slice(0, 8));
    if (this.opts.timestamp) row.push(this.clock.secondsSinceStart(r.ts_ns).toFixed(3));
    if (this.opts.printUid) row.push(r.uid);
    const ret = r.ret === 0 ? '0' : r.errno ?? String(r.ret);
    // comm and args as raw bytes: bytes that are not UTF-8 show as \xNN (both escape).
    row.push(styled(escapeBytesForTerminal(comm)), r.pid, r.ppid, ret, ...this.cgCols.cells(r), styled(formatArgs({ ...r, args }, Boolean(this.opts.quote))));
    return this.printer.row(row);
  }
}

/** The exec's figure (src/tools/common/figures.ts EXECSNOOP): one per exec, by comm and result. */
export function execFigure(r: ExecRecord) {
  return { execs: [{ comm: r.comm, result: r.errno ?? (r.ret === 0 ? 'ok' : String(r.ret)), count: 1 }] };
}
