// runqlat's readings: the only code that reads its maps. Histograms are
// cumulative in the kernel; a reading is the difference with the previous
// one. --max's worst waits are kept per CPU and merged here.
import type { BpfObject } from '../../core/bpf/object.js';
import { cgroupPathsById } from '../../core/linux/cgroup.js';
import type { RqlHist, RqlWait, SKELETON } from '../../generated/runqlat.js';
import type { Split } from './probe.js';

export interface RunqHistRow {
  id: number;          // tgid (-P), tid (-L), cgroup id (--per-cgroup), 0
  comm?: string;       // -P, -L
  cgroup?: string;     // --per-cgroup: the path, or the id when gone
  count: number;
  total_ns: number;
  max_ns: number;
  hist: number[];
}

export interface WorstWait {
  wait_ns: number;
  ts_ns: number;
  cpu: number;
  pid: number;
  tgid: number;
  comm: string;
  prev_pid: number;
  prev_tgid: number;
  prev_comm: string;
}

export class RunqlatCollector {
  private readonly hists;
  private readonly worst;
  private prev = new Map<number, RqlHist>();
  private cgroups = new Map<number, string>();

  constructor(obj: BpfObject<typeof SKELETON>, private readonly split: Split) {
    this.hists = obj.typedMap('hists');
    this.worst = obj.typedMap('worst');
  }

  private cgroupPath(id: number): string {
    if (!this.cgroups.has(id)) this.cgroups = cgroupPathsById();
    return this.cgroups.get(id) ?? `cgroup id ${id}`;
  }

  rows(): RunqHistRow[] {
    const rows: RunqHistRow[] = [];
    const now = new Map<number, RqlHist>();
    for (const [k, v] of this.hists.entries()) {
      now.set(k.value, v);
      const p = this.prev.get(k.value);
      const count = v.count - (p?.count ?? 0);
      if (count <= 0) continue;
      rows.push({
        id: k.value,
        ...(this.split === 'process' || this.split === 'thread' ? { comm: v.comm } : {}),
        ...(this.split === 'cgroup' ? { cgroup: this.cgroupPath(k.value) } : {}),
        count,
        total_ns: v.total_ns - (p?.total_ns ?? 0),
        max_ns: v.max_ns,
        hist: v.slots.map((s, i) => s - (p?.slots[i] ?? 0)),
      });
    }
    this.prev = now;
    return rows.sort((a, b) => b.total_ns - a.total_ns);
  }

  /** The worst waits since load, every CPU's, longest first. */
  worstWaits(n: number): WorstWait[] {
    const perCpu = this.worst.lookupPerCpu({ value: 0 }) ?? [];
    const all: RqlWait[] = perCpu.flatMap((w) => w.waits).filter((w) => w.wait_ns > 0);
    return all.sort((a, b) => b.wait_ns - a.wait_ns).slice(0, n).map((w) => ({
      wait_ns: w.wait_ns, ts_ns: w.ts_ns, cpu: w.cpu, pid: w.pid, tgid: w.tgid, comm: w.comm,
      prev_pid: w.prev_pid, prev_tgid: w.prev_tgid, prev_comm: w.prev_comm,
    }));
  }
}
