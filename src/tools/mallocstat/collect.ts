// mallocstat's readings: the only code that reads its maps and its ring
// buffer. CountsCollector turns the kernel's cumulative counters into
// per-report ones; LeakCollector reads the blocks not freed (--leaks) and
// the ring buffer's records that name their stacks (leak-stacks.ts).
import type { BpfObject } from '../../core/bpf/object.js';
import { readComm, pidExists } from '../../core/linux/process.js';
import { StackMap, type Stack } from '../../core/stacks/index.js';
import { LeakStacks } from './leak-stacks.js';
import { LeakCopies } from './leak-copies.js';
import { ms_pid_event_layout, ms_stack_event_layout, type MsStats, ENUMS, DEFINES, type SKELETON } from '../../generated/mallocstat.js';

/** One report: per process (pid 0 = all, without -P). */
export interface Report {
  pid: number;
  comm?: string;
  stats: Map<number, MsStats>; // by function id
  sizes: number[];             // log2 slots
}

export const ZERO: MsStats = { count: 0, bytes: 0, timed: 0, total_ns: 0, max_ns: 0 };

export function emptyReport(pid: number): Report {
  return { pid, stats: new Map(), sizes: new Array(DEFINES.MALLOCSTAT_SLOTS).fill(0) };
}

/**
 * Counters since the previous report. Maps are read, never drained: a BPF
 * program adding to an entry while user space deletes it would lose counts,
 * and exact counts are the point. Entries of processes that are gone are
 * deleted after their last report (they cannot grow any more).
 */
export class CountsCollector {
  private prevStats = new Map<string, MsStats>();
  private prevHist = new Map<string, number>();
  private readonly stats;
  private readonly hist;
  private readonly counts;
  private readonly sizes;
  private readonly comms;

  constructor(obj: BpfObject<typeof SKELETON>, private readonly perProcess: boolean) {
    // -P: hashes keyed by pid; else per-CPU arrays (function, size slot) for pid 0.
    this.stats = obj.typedMap('stats');
    this.hist = obj.typedMap('hist');
    this.counts = obj.typedMap('counts');
    this.sizes = obj.typedMap('sizes');
    this.comms = obj.typedMap('comms');
  }

  private statEntries(): [{ pid: number; func: number }, MsStats][] {
    if (this.perProcess) return this.stats.entries();
    return this.counts.entries().map(([k, v]) => [{ pid: 0, func: k.value }, v]);
  }

  private histEntries(): [{ pid: number; slot: number }, { value: number }][] {
    if (this.perProcess) return this.hist.entries();
    return this.sizes.entries().map(([k, v]) => [{ pid: 0, slot: k.value }, v]);
  }

  read(): Report[] {
    const reports = new Map<number, Report>();
    const reportOf = (pid: number) => {
      let r = reports.get(pid);
      if (!r) reports.set(pid, (r = emptyReport(pid)));
      return r;
    };
    const seen = new Set<number>();
    for (const [k, v] of this.statEntries()) {
      const key = `${k.pid}:${k.func}`;
      const before = this.prevStats.get(key) ?? ZERO;
      this.prevStats.set(key, v);
      seen.add(k.pid);
      const d: MsStats = {
        count: v.count - before.count, bytes: v.bytes - before.bytes, timed: v.timed - before.timed,
        total_ns: v.total_ns - before.total_ns, max_ns: v.max_ns, // max: over the run
      };
      if (d.count > 0 || d.timed > 0) reportOf(k.pid).stats.set(k.func, d);
    }
    for (const [k, v] of this.histEntries()) {
      const key = `${k.pid}:${k.slot}`;
      const n = v.value - (this.prevHist.get(key) ?? 0);
      this.prevHist.set(key, v.value);
      if (n > 0 && k.slot < DEFINES.MALLOCSTAT_SLOTS) reportOf(k.pid).sizes[k.slot] += n;
    }
    if (this.perProcess) {
      for (const r of reports.values()) r.comm = this.comms.lookup({ value: r.pid })?.comm ?? readComm(r.pid);
      for (const pid of seen) if (!pidExists(pid)) this.forget(pid);
    }
    return [...reports.values()].sort((a, b) => a.pid - b.pid);
  }

  private forget(pid: number): void {
    for (const key of [...this.prevStats.keys()]) {
      if (!key.startsWith(`${pid}:`)) continue;
      this.stats.delete({ pid, func: Number(key.split(':')[1]) });
      this.prevStats.delete(key);
    }
    for (const key of [...this.prevHist.keys()]) {
      if (!key.startsWith(`${pid}:`)) continue;
      this.hist.delete({ pid, slot: Number(key.split(':')[1]) });
      this.prevHist.delete(key);
    }
    this.comms.delete({ value: pid });
  }
}

export interface LeakGroup {
  pid?: number;
  stack: Stack;
  count: number;
  bytes: number;
}

export interface LeakReport {
  groups: LeakGroup[];
  count: number;
  bytes: number;
  /** Blocks not tracked because the live map was full (--max-allocs). */
  dropped: number;
  /** Stacks that could not be stored (their blocks are grouped as "[lost stack]"). */
  lostStacks: number;
}

export interface LeakOptions {
  perProcess: boolean;
  /** -- CMD's argv[0]: its executable and libraries are where build ids are looked for. */
  command?: string;
  /** --older SECS: only blocks at least this old at report time. */
  olderS?: number;
  /** --unwind dwarf: stacks come as copies (ms_copies), unwound here. */
  copies?: boolean;
}

/** --leaks: the blocks live in `live`, grouped by the stack that allocated them. */
export class LeakCollector {
  private readonly live;
  private readonly procs;
  private readonly dropped;
  private readonly stackMap: StackMap;
  private readonly stacks: LeakStacks;
  /** --unwind dwarf: the walks of live blocks. */
  readonly copies?: LeakCopies;

  constructor(obj: BpfObject<typeof SKELETON>, private readonly opts: LeakOptions) {
    this.live = obj.typedMap('live');
    this.procs = obj.typedMap('procs');
    this.dropped = obj.typedMap('dropped');
    this.stackMap = StackMap.of(obj);
    this.stacks = new LeakStacks(this.stackMap, opts.command);
    if (opts.copies) this.copies = new LeakCopies(this.stacks);
  }

  /** Read `pid`'s mappings now, while it runs: its frames are named at the end, maybe after it exited. */
  notePid(pid: number): void {
    this.stacks.notePid(pid);
  }

  /** A ring buffer record: a process's first allocation (or first since an exec), or a stack's frames by build id. */
  onEvent(record: DataView): void {
    const { kind, pid } = ms_pid_event_layout.decode(record);
    if (kind === ENUMS.MS_EV_STACK) {
      const ev = ms_stack_event_layout.decode(record);
      const frames = ev.frames.slice(0, Math.min(ev.nframes, DEFINES.MS_STACK_FRAMES)).map((f) => (f.status === 1
        ? { buildId: Buffer.from(f.build_id).toString('hex'), offset: f.offset }
        : { offset: f.offset }));
      this.stacks.noteBuilt(pid, ev.stackid, frames);
      return;
    }
    this.stacks.noteProcess(pid);
  }

  /** Blocks live now (final: the end of the run; the map is emptied as it is read). */
  read(final: boolean): LeakReport {
    const nowNs = Number(process.hrtime.bigint()); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
    const minAgeNs = (this.opts.olderS ?? 0) * 1e9;
    const execNs = new Map<number, number>();
    for (const [k, v] of this.procs.entries()) execNs.set(k.value, v.exec_ns);
    const groups = new Map<string, LeakGroup>();
    let count = 0;
    let bytes = 0;
    const copied = new Set<string>();
    for (const [k, v] of final ? this.live.drain() : this.live.entries()) {
      if (v.stackid === DEFINES.MS_STACK_COPIED) copied.add(`${k.pid}:${k.addr}`);
      if (v.ts_ns < (execNs.get(k.pid) ?? 0)) continue; // freed by the exec that replaced the image
      if (minAgeNs && nowNs - v.ts_ns < minAgeNs) continue;
      const stack = v.stackid === DEFINES.MS_STACK_COPIED && this.copies ? this.copies.stackOf(k.pid, k.addr) : this.stacks.stackOf(k.pid, v.stackid);
      const where = stack.frames.length ? stack.frames.map((f) => `${f.module ?? ''}\0${f.name}`).join('\n') : '[lost stack]';
      const key = this.opts.perProcess ? `${k.pid}\n${where}` : where;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { ...(this.opts.perProcess ? { pid: k.pid } : {}), stack, count: 0, bytes: 0 }));
      g.count++;
      g.bytes += v.size;
      count++;
      bytes += v.size;
    }
    this.copies?.prune(copied);
    const sorted = [...groups.values()].sort((a, b) => b.bytes - a.bytes || b.count - a.count);
    return { groups: sorted, count, bytes, dropped: this.dropped.lookup({ value: 0 })?.value ?? 0, lostStacks: this.stackMap.errors() };
  }
}
