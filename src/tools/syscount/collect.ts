// syscount's readings: the only code that reads its maps. The command turns
// the kernel's cumulative per-syscall figures into per-report ones; the
// exporter (metrics.ts) reads the same totals as counters.
import type { BpfObject } from '../../core/bpf/object.js';
import { syscallName } from '../../core/linux/names.js';
import type { ScStats, SKELETON } from '../../generated/syscount.js';

/** One syscall's figures for a report. */
export interface SyscallRow {
  nr: number;
  name: string;
  count: number;
  errors: number;
  total_ns: number;
  hist?: number[];
}

/** Calls of one syscall that never returned to user space (the thread died in them), not counted in its row. */
export interface UnfinishedRow {
  nr: number;
  name: string;
  count: number;
}

/** One process's figures for a report (-P). */
export interface ProcessRow {
  pid: number;
  comm: string;
  count: number;
  errors: number;
  total_ns: number;
}

/** The maps syscount reads, typed from the skeleton. */
export function syscountMaps(obj: BpfObject<typeof SKELETON>) {
  return {
    syscalls: obj.typedMap('syscalls'),
    rare: obj.typedMap('rare'),
    procs: obj.typedMap('procs'),
    hists: obj.typedMap('hists'),
    errnos: obj.typedMap('errnos'),
    slots: obj.map('syscalls').maxEntries,
  };
}

export type SyscountMaps = ReturnType<typeof syscountMaps>;

/**
 * Per syscall number, what the kernel has counted since load (per-CPU values
 * summed): the array for numbers within the arch's table, `rare` beyond it.
 * Numbers never called are left out.
 */
export function readSyscallTotals(maps: Pick<SyscountMaps, 'syscalls' | 'rare' | 'slots'>): Map<number, ScStats> {
  const now = new Map<number, ScStats>();
  for (let nr = 0; nr < maps.slots; nr++) {
    const v = maps.syscalls.lookup({ value: nr });
    if (v && (v.count || v.unfinished)) now.set(nr, v);
  }
  // The key is the kernel's `long` syscall number cut to 32 bits: read it
  // signed, so a negative number is shown as one (never as 4294967295).
  for (const [k, v] of maps.rare.entries()) now.set(k.value | 0, v);
  return now;
}

/** Failures per (syscall, errno) since load (want_errnos), per-CPU values summed. */
export function readErrnoTotals(errnos: SyscountMaps['errnos']): { nr: number; errno: number; count: number }[] {
  return errnos.entries().map(([k, v]) => ({ nr: k.nr | 0, errno: k.err, count: v.value }));
}

function sub(a: number, b: number | undefined): number {
  return a - (b ?? 0);
}

/**
 * A command's readings, each covering the time since the previous one.
 * Arrays cannot be deleted from, so a reading is the difference with the
 * previous snapshot (exact, nothing lost between read and reset); the
 * per-process hash is drained instead, so exited pids do not pile up.
 */
export class SyscountCollector {
  private readonly maps: SyscountMaps;
  private prev = new Map<number, ScStats>();
  private prevHist = new Map<number, number[]>();
  /** Of the last syscallRows() reading. */
  unfinished: UnfinishedRow[] = [];

  constructor(obj: BpfObject<typeof SKELETON>) {
    this.maps = syscountMaps(obj);
  }

  syscallRows(): SyscallRow[] {
    const now = readSyscallTotals(this.maps);
    const rows: SyscallRow[] = [];
    this.unfinished = [];
    for (const [nr, v] of now) {
      const p = this.prev.get(nr);
      const unfinished = sub(v.unfinished, p?.unfinished);
      if (unfinished > 0) this.unfinished.push({ nr, name: syscallName(nr), count: unfinished });
      const count = sub(v.count, p?.count);
      if (count <= 0) continue;
      rows.push({ nr, name: syscallName(nr), count, errors: sub(v.errors, p?.errors), total_ns: sub(v.total_ns, p?.total_ns) });
    }
    this.prev = now;
    return rows;
  }

  /** Histogram of one syscall since the last call for it. */
  histOf(nr: number): number[] {
    const cur = this.maps.hists.lookup({ value: nr })?.slots ?? [];
    const before = this.prevHist.get(nr);
    this.prevHist.set(nr, cur);
    return cur.map((v, i) => v - (before?.[i] ?? 0));
  }

  processRows(): ProcessRow[] {
    return this.maps.procs.drain().map(([k, v]) => ({ pid: k.value, comm: v.comm, count: v.count, errors: v.errors, total_ns: v.total_ns }));
  }
}
