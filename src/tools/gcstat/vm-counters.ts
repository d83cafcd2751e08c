// gcstat without USDT probes: the VM's own GC counters, read from the
// process's memory. A Ruby built without DTrace probes (Debian 13's ruby3.3,
// most container images) fires nothing rbtrace can attach to, but its
// objspace keeps what GC.stat reports: the collection count, major and minor
// counts, the latest collection's reason, and the time spent marking and
// sweeping. Read through /proc/PID/mem, nothing is loaded into the process
// and no BPF program runs.
//
// rb_objspace_t.profile, around `count` (the offset decoded from
// rb_gc_count(), layout.ts), in 3.1 and 3.3 alike: minor_gc_count at -56,
// major_gc_count at -48 (size_t minor, major, compact, read_barrier_faults,
// double sweep_start, two size_t, then count). The times differ: 3.1 keeps
// one total_time_ns at +32 (GC.stat(:time)); 3.3 keeps marking_time_ns at +8
// and sweeping_time_ns at +32 (GC.stat(:marking_time), :sweeping_time).
// Checked against GC.stat in a live process of each (test/e2e/gcstat-vm.test.ts).
import { closeSync, openSync, readSync, readFileSync, readdirSync } from 'node:fs';
import { mappingKey, fileKey, type BinaryFile } from '../../core/linux/procfiles.js';
import type { RubyGcLayout } from './layout.js';

const MINOR_BEFORE_COUNT = 56;
const MAJOR_BEFORE_COUNT = 48;

/**
 * How often the counters are read. A process's collections in its last poll
 * interval before it exits are not seen: a command (often short) is read
 * every 20 ms; a running process (-p, usually a server, watched for long)
 * every 100 ms (and so is each ruby the exporter reads). A poll is seven 8-byte reads of /proc/PID/mem: a 15 s -p run
 * spent 15.0 s of its 15.2 s idle in node's CPU profile.
 */
export const VM_POLL_MS = { command: 20, process: 100 };

/** Where each version keeps GC time, relative to profile.count (absent: not read). */
const TIME_AFTER_COUNT: Record<string, { total?: number; mark?: number; sweep?: number }> = {
  '3.1': { total: 32 },
  '3.3': { mark: 8, sweep: 32 },
};

/** The VM's GC counters at one moment, as GC.stat names them. */
export interface VmGcCounters {
  count: number;
  minor: number;
  major: number;
  /** profile.latest_gc_info's flags (decodeGcInfo). */
  info: number;
  /** Nanoseconds; null where this version does not keep the figure. */
  mark_ns: number | null;
  sweep_ns: number | null;
  total_ns: number | null;
}

export const ZERO_COUNTERS: VmGcCounters = { count: 0, minor: 0, major: 0, info: 0, mark_ns: 0, sweep_ns: 0, total_ns: 0 };

/** The time fields this layout's version has. */
export function timeFields(layout: RubyGcLayout): { total?: number; mark?: number; sweep?: number } {
  return TIME_AFTER_COUNT[layout.version.split('.').slice(0, 2).join('.')] ?? {};
}

/**
 * One process's counters, read from its memory. The libruby is found in its
 * maps by file identity (device and inode), so a ruby in another mount
 * namespace (a container) is read through the same --lib file.
 */
export class VmGcReader {
  private fd: number | undefined;
  private base: number | undefined;
  private objspace = 0;

  constructor(readonly pid: number, private readonly binary: BinaryFile, private readonly layout: RubyGcLayout) {}

  /** Does the process map the libruby (now)? */
  static maps(pid: number, binary: BinaryFile): number | undefined {
    const key = fileKey(binary);
    try {
      const text = readFileSync(`/proc/${pid}/maps`, 'utf8');
      for (const line of text.split('\n')) {
        const m = /^([0-9a-f]+)-[0-9a-f]+ \S+ ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)/.exec(line);
        if (!m || parseInt(m[2], 16) !== 0) continue;
        if (mappingKey({ major: parseInt(m[3], 16), minor: parseInt(m[4], 16), inode: BigInt(m[5]) }) === key) return parseInt(m[1], 16);
      }
    } catch {
      // gone
    }
    return undefined;
  }

  /** The counters now; undefined when the process is gone, or its VM not yet made. */
  read(): VmGcCounters | undefined {
    try {
      if (this.base === undefined) {
        this.base = VmGcReader.maps(this.pid, this.binary);
        if (this.base === undefined) return undefined;
        this.fd = openSync(`/proc/${this.pid}/mem`, 'r');
      }
      if (!this.objspace) {
        const vm = this.word(this.base + this.layout.vmPtr);
        if (!vm) return undefined;
        this.objspace = this.word(vm + this.layout.vmObjspace);
        if (!this.objspace) return undefined;
      }
      const at = this.objspace + this.layout.count;
      const t = timeFields(this.layout);
      const opt = (off: number | undefined) => (off === undefined ? null : this.word(at + off));
      const mark = opt(t.mark);
      const sweep = opt(t.sweep);
      return {
        count: this.word(at), minor: this.word(at - MINOR_BEFORE_COUNT), major: this.word(at - MAJOR_BEFORE_COUNT),
        info: this.word(this.objspace + this.layout.info) & 0xffffffff,
        // 3.3's GC.stat(:time) is the sum of the two.
        mark_ns: mark, sweep_ns: sweep, total_ns: t.total !== undefined ? opt(t.total) : mark !== null && sweep !== null ? mark + sweep : null,
      };
    } catch {
      this.close(); // the process exited (or exec'd) under us
      return undefined;
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private word(addr: number): number {
    const b = Buffer.alloc(8);
    if (readSync(this.fd!, b, 0, 8, addr) !== 8) throw new Error('short read');
    return Number(b.readBigUInt64LE(0));
  }
}

/** Counters gained from `from` to `to` (a process's VM only counts up). */
export function countersDelta(from: VmGcCounters, to: VmGcCounters): VmGcCounters {
  const d = (a: number | null, b: number | null) => (a === null || b === null ? null : b - a);
  return {
    count: to.count - from.count, minor: to.minor - from.minor, major: to.major - from.major, info: to.info,
    mark_ns: d(from.mark_ns, to.mark_ns), sweep_ns: d(from.sweep_ns, to.sweep_ns), total_ns: d(from.total_ns, to.total_ns),
  };
}

/** The process and every descendant (from /proc/PID/task/TID/children). */
export function processTree(root: number): number[] {
  const out: number[] = [];
  const walk = (pid: number, depth: number) => {
    out.push(pid);
    if (depth > 64) return;
    let tids: string[] = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return;
    }
    for (const tid of tids) {
      let kids = '';
      try {
        kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(' ')) if (k.trim()) walk(Number(k), depth + 1);
    }
  };
  walk(root, 0);
  return out;
}
