// The summary table of `strace -c -w` (strace 6.x layout), so a BPF tool's
// figures can be laid beside strace's and diffed column by column:
//
// % time     seconds  usecs/call     calls    errors syscall
// ------ ----------- ----------- --------- --------- ----------------
//  58.33    0.000014           1        14           mmap
// ------ ----------- ----------- --------- --------- ----------------
// 100.00    0.000024           2        16         1 total
//
// As strace does: rows sorted by time (then calls, then name), usecs/call
// truncated to an integer, an empty errors cell for 0, and a name column at
// least 16 wide that grows to one more than the longest name.

import { escapeForTerminal } from './format.js';

export interface StraceRow {
  name: string;
  calls: number;
  errors: number;
  /** Time spent in the call (wall clock, as -w measures), nanoseconds. */
  total_ns: number;
}

export function sortStraceRows<T extends StraceRow>(rows: T[]): T[] {
  return [...rows].sort((a, b) => b.total_ns - a.total_ns || b.calls - a.calls || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function line(pct: number, ns: number, calls: number, errors: number, name: string): string {
  const usecsPerCall = calls ? Math.floor(ns / 1000 / calls) : 0;
  return `${pct.toFixed(2).padStart(6)} ${(ns / 1e9).toFixed(6).padStart(11)} ${String(usecsPerCall).padStart(11)} ` +
    `${String(calls).padStart(9)} ${(errors ? String(errors) : '').padStart(9)} ${name}`;
}

/** The whole table, ending in '\n'; rows are printed in the order given (see sortStraceRows). */
export function formatStraceTable(rawRows: StraceRow[]): string {
  const rows = rawRows.map((r) => ({ ...r, name: escapeForTerminal(r.name) }));
  const width = Math.max(16, ...rows.map((r) => r.name.length + 1));
  const rule = `------ ----------- ----------- --------- --------- ${'-'.repeat(width)}`;
  const total = rows.reduce((t, r) => ({ ns: t.ns + r.total_ns, calls: t.calls + r.calls, errors: t.errors + r.errors }), { ns: 0, calls: 0, errors: 0 });
  const out = ['% time     seconds  usecs/call     calls    errors syscall', rule];
  for (const r of rows) out.push(line(total.ns ? (100 * r.total_ns) / total.ns : 0, r.total_ns, r.calls, r.errors, r.name));
  out.push(rule, line(total.ns ? 100 : 0, total.ns, total.calls, total.errors, 'total'));
  return out.join('\n') + '\n';
}
