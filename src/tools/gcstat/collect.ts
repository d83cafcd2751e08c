// gcstat's readings: the only code that reads its maps, plus the process's
// RSS from /proc/PID/status (VmRSS, and VmHWM, the peak), read at each
// interval: exact and cheap, where the kmem:rss_stat tracepoint would fire
// on every page fault of every process.
import { readFileSync } from 'node:fs';
import type { BpfObject } from '../../core/bpf/object.js';
import { ENUMS, gc_step_layout, type GcStat, type SKELETON } from '../../generated/gcstat.js';
import type { GcStepRecord } from './collections.js';

export interface PhaseStats {
  count: number;
  total_ns: number;
  max_ns: number;
}

export type GcPhaseName = 'mark' | 'sweep';

export const emptyPhase = (): PhaseStats => ({ count: 0, total_ns: 0, max_ns: 0 });

/** VmRSS and VmHWM in bytes, from /proc/PID/status. */
export function readRss(pid: number): { rss: number; peak: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(text.match(new RegExp(`^${field}:\\s*(\\d+) kB`, 'm'))?.[1] ?? NaN) * 1024;
    const rss = kb('VmRSS');
    if (!Number.isFinite(rss)) return null; // a zombie, or a kernel thread
    return { rss, peak: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Per process, the phases since the last drain; `comms` learns each process's name. */
export function drainStats(obj: BpfObject<typeof SKELETON>, comms: Map<number, string>): Map<number, { mark: PhaseStats; sweep: PhaseStats }> {
  const byPid = new Map<number, { mark: PhaseStats; sweep: PhaseStats }>();
  for (const [k, v] of obj.typedMap('stats').drain()) {
    let e = byPid.get(k.pid);
    if (!e) byPid.set(k.pid, (e = { mark: emptyPhase(), sweep: emptyPhase() }));
    const s: GcStat = v;
    if (s.comm) comms.set(k.pid, s.comm);
    e[k.phase === ENUMS.GC_MARK ? 'mark' : 'sweep'] = { count: s.count, total_ns: s.total_ns, max_ns: s.max_ns };
  }
  return byPid;
}

/** The log2 histogram (usecs) of one phase since load. */
export function phaseHist(obj: BpfObject<typeof SKELETON>, phase: GcPhaseName): number[] {
  return obj.typedMap('hists').lookup({ value: phase === 'mark' ? ENUMS.GC_MARK : ENUMS.GC_SWEEP })?.slots ?? [];
}

/** A ring-buffer record of `steps` as the collection model takes it. */
export function decodeStep(view: DataView): GcStepRecord {
  const s = gc_step_layout.decode(view);
  return {
    pid: s.pid, comm: s.comm, phase: s.phase === ENUMS.GC_MARK ? 'mark' : 'sweep', start_ns: s.start_ns, dur_ns: s.dur_ns,
    gc: s.vm_ok ? s.gc_count : null, info: s.vm_ok ? s.info : null,
  };
}
