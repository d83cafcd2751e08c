// gcstat for `rbtrace exporter`, the rubies without USDT probes (Debian 13's
// ruby3.3, most container images): exporter/rubies.ts finds them as it finds
// the others and keeps their libruby without attaching anything; here each
// process's VM counters (vm-counters.ts, what GC.stat reads) are read from
// its memory every VM_POLL_MS.process and their gains added up: collections
// by kind, GC time, GCs per process. No BPF runs for them, so --cgroup is
// applied here, from /proc/PID/cgroup, once per process when first found.
//
// A process started after the exporter counts from its start (its counters
// begin at zero: nothing is missed however late the scan finds it); one
// running before, from its first reading. Its collections in the last poll
// interval before it exits are not seen (its memory is gone by then).
import type { CgroupDir } from '../../core/linux/cgroup.js';
import { cgroupOfPid, cgroupUnder } from '../../core/linux/cgroup.js';
import { processStartTicks } from '../../core/linux/process.js';
import type { BinaryFile } from '../../core/linux/procfiles.js';
import type { RubyBinary } from '../exporter/rubies.js';
import { rubyGcLayout, type RubyGcLayout } from './layout.js';
import { VM_POLL_MS, VmGcReader, ZERO_COUNTERS, countersDelta, type VmGcCounters } from './vm-counters.js';

/** Where the gains of the processes read go. */
export interface VmGains {
  /** Collections of one kind (GC.stat major_gc_count or minor_gc_count gained). */
  collections(kind: 'major' | 'minor', n: number): void;
  /** GCs of one process (GC.count gained; 0 when it is first read, so that its series shows). */
  gcs(pid: number, n: number): void;
}

/** For watchRubies' withoutProbes: the layout of a libruby whose counters rbtrace can read, else undefined (logged). */
export function vmLayoutOf(file: BinaryFile, log: (line: string) => void): RubyGcLayout | undefined {
  const found = rubyGcLayout(file);
  if ('layout' in found) return found.layout;
  log(`${file.name}: no GC probes, and its VM's counters cannot be read: ${found.why}`);
  return undefined;
}

export class VmRubies {
  private readonly readers = new Map<number, { reader: VmGcReader; last: VmGcCounters }>();
  /** Processes judged outside --cgroup (not read). */
  private readonly outside = new Set<number>();
  private readonly startedAt = processStartTicks('self') ?? 0;
  /** GC time by phase, ns: mark and sweep where the VM keeps them apart (3.3), total where it keeps one figure (3.1). */
  readonly timeNs = new Map<'mark' | 'sweep' | 'total', number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly rubies: () => Iterable<[number, RubyBinary<RubyGcLayout>]>, private readonly cgroup: CgroupDir | undefined,
    private readonly gains: VmGains) {}

  /** Read every VM_POLL_MS.process from now on; `onError` for a poll that failed. */
  start(onError: (err: unknown) => void): void {
    this.timer = setInterval(() => {
      try {
        this.poll();
      } catch (err) {
        onError(err);
      }
    }, VM_POLL_MS.process);
  }

  /** Read every process running a libruby kept without probes; forget those gone. */
  poll(): void {
    const live = new Set<number>();
    for (const [pid, binary] of this.rubies()) {
      if (!binary.vm) continue;
      live.add(pid);
      const w = this.readers.get(pid) ?? this.watch(pid, binary.file, binary.vm);
      if (!w) continue;
      const now = w.reader.read();
      if (!now) {
        this.forget(pid); // exited or exec'd: a new VM is a new process to us
        continue;
      }
      this.add(pid, countersDelta(w.last, now));
      w.last = now;
    }
    for (const pid of this.readers.keys()) if (!live.has(pid)) this.forget(pid);
    for (const pid of this.outside) if (!live.has(pid)) this.outside.delete(pid);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const pid of [...this.readers.keys()]) this.forget(pid);
  }

  private watch(pid: number, file: BinaryFile, layout: RubyGcLayout): { reader: VmGcReader; last: VmGcCounters } | undefined {
    if (this.outside.has(pid)) return undefined;
    if (this.cgroup && !cgroupUnder(cgroupOfPid(pid), this.cgroup.relative)) {
      this.outside.add(pid);
      return undefined;
    }
    const reader = new VmGcReader(pid, file, layout);
    const first = reader.read();
    if (!first) {
      reader.close(); // its VM is not made yet: the next poll
      return undefined;
    }
    const started = processStartTicks(pid);
    const w = { reader, last: started !== undefined && started >= this.startedAt ? ZERO_COUNTERS : first };
    this.readers.set(pid, w);
    this.gains.gcs(pid, 0);
    return w;
  }

  private add(pid: number, d: VmGcCounters): void {
    if (d.major > 0) this.gains.collections('major', d.major);
    if (d.minor > 0) this.gains.collections('minor', d.minor);
    if (d.count > 0) this.gains.gcs(pid, d.count);
    const time = (phase: 'mark' | 'sweep' | 'total', ns: number | null) => {
      if (ns !== null) this.timeNs.set(phase, (this.timeNs.get(phase) ?? 0) + ns);
    };
    if (d.mark_ns !== null || d.sweep_ns !== null) {
      time('mark', d.mark_ns);
      time('sweep', d.sweep_ns);
    } else {
      time('total', d.total_ns);
    }
  }

  private forget(pid: number): void {
    this.readers.get(pid)?.reader.close();
    this.readers.delete(pid);
  }
}
