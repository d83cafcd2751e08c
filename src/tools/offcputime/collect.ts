// offcputime's readings: the only code that reads its maps. The sums and the
// stack map are read once, at the end; each distinct stack is symbolized and
// stacks that read the same (two addresses in one function) are merged.
import type { BpfObject } from '../../core/bpf/object.js';
import { readPerCpuCounter } from '../../core/bpf/maps.js';
import { StackMap, foldedFrames, missingStackFrame, type Frame, type Symbolizer } from '../../core/stacks/index.js';
import { ENUMS, type SKELETON } from '../../generated/offcputime.js';

export interface OffcpuStack {
  comm: string;
  state?: string;  // -s
  pids: number[];
  total_ns: number;
  count: number;
  truncated: boolean;
  frames: Frame[];   // innermost first
  folded: string[];  // outermost first, comm (and state) first
}

export interface OffcpuReport {
  total_ns: number;
  stacks: OffcpuStack[]; // by time, longest first
  stackErrors: number;
  dropped: number;
  unpaired: number; // blocks whose switch-in the kernel did not report: not counted
}

const STATES: Record<number, string> = {
  [ENUMS.OFFCPU_SLEEPING]: 'sleeping', [ENUMS.OFFCPU_UNINTERRUPTIBLE]: 'uninterruptible', [ENUMS.OFFCPU_OTHER]: 'other',
};

export function readOffcpu(obj: BpfObject<typeof SKELETON>, sym: Symbolizer, perState: boolean): OffcpuReport {
  const stackMap = StackMap.of(obj);
  const merged = new Map<string, OffcpuStack>();
  let total = 0;
  for (const [k, v] of obj.typedMap('counts').entries()) {
    total += v.total_ns;
    const st = sym.symbolize(k.tgid, stackMap.addresses(k.user_stack), stackMap.addresses(k.kernel_stack));
    // The stack is taken inside the tracepoint: its innermost kernel frames are rbtrace's own program.
    while (st.frames.length && st.frames[0].kernel && /^(bpf_prog_|bpf_trace_run|__bpf_trace_|__traceiter_)/.test(st.frames[0].name)) st.frames.shift();
    const missing = missingStackFrame(k.user_stack, k.kernel_stack);
    if (missing) st.frames.push(missing);
    const state = perState ? STATES[k.state] ?? `state-${k.state}` : undefined;
    const folded = foldedFrames(k.comm, st);
    if (state) folded.splice(1, 0, `[${state}]`);
    const id = folded.join(';');
    const had = merged.get(id);
    if (had) {
      had.total_ns += v.total_ns;
      had.count += v.count;
      if (!had.pids.includes(k.tgid)) had.pids.push(k.tgid);
    } else {
      merged.set(id, { comm: k.comm, state, pids: [k.tgid], total_ns: v.total_ns, count: v.count, truncated: st.truncated, frames: st.frames, folded });
    }
  }
  const stacks = [...merged.values()].sort((a, b) => b.total_ns - a.total_ns);
  return { total_ns: total, stacks, stackErrors: stackMap.errors(), dropped: readPerCpuCounter(obj.map('dropped')), unpaired: readPerCpuCounter(obj.map('unpaired')) };
}
