// rubycalls' readings: the only code that reads its maps. The map holds
// totals since load; each report is the difference with the previous one.
import type { BpfObject } from '../../core/bpf/object.js';
import { readPerCpuCounter } from '../../core/bpf/maps.js';
import { ENUMS, type SKELETON } from '../../generated/rubycalls.js';

/** One method (per process with -P) during one report. */
export interface CallRow {
  pid?: number;
  /** Class#method, as Ruby's probes name it (a class method: the class's name). */
  method: string;
  kind: 'ruby' | 'c';
  count: number;
  /** -L: calls whose return was seen, their total time and log2 histogram of ns. */
  timed: number;
  total_ns: number;
  hist: number[];
}

export class CallsCollector {
  private prev = new Map<string, { count: number; timed: number; total_ns: number; hist: number[] }>();

  constructor(private readonly obj: BpfObject<typeof SKELETON>) {}

  rows(): CallRow[] {
    const out: CallRow[] = [];
    const now = new Map<string, { count: number; timed: number; total_ns: number; hist: number[] }>();
    for (const [k, v] of this.obj.typedMap('calls').entries()) {
      const kind = k.kind === ENUMS.RC_RUBY ? 'ruby' : 'c';
      const id = `${k.pid}\0${kind}\0${k.klass}\0${k.method}`;
      now.set(id, { count: v.count, timed: v.timed, total_ns: v.total_ns, hist: v.slots });
      const p = this.prev.get(id);
      const count = v.count - (p?.count ?? 0);
      if (count <= 0 && v.timed - (p?.timed ?? 0) <= 0) continue;
      out.push({
        ...(k.pid ? { pid: k.pid } : {}),
        method: `${k.klass}#${k.method}`, kind, count,
        timed: v.timed - (p?.timed ?? 0), total_ns: v.total_ns - (p?.total_ns ?? 0),
        hist: v.slots.map((x, i) => x - (p?.hist[i] ?? 0)),
      });
    }
    this.prev = now;
    return out;
  }

  /** Calls not counted since load because the method table was full. */
  dropped(): number {
    return readPerCpuCounter(this.obj.map('dropped'));
  }
}
