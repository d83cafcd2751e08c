// offcputime's probe: the attach paths of src/bpf/offcputime.bpf.c and the
// .rodata its options become.
import type { AttachPath } from '../../core/bpf/paths.js';
import type { LoadSpec } from '../../core/tool.js';
import { StackMap } from '../../core/stacks/index.js';
import { SKELETON, type Rodata } from '../../generated/offcputime.js';

export interface ProbeMode {
  perState: boolean;
  minUs: number;
  maxUs?: number;
  userOnly: boolean;
  kernelOnly: boolean;
}

export const PATHS: AttachPath<typeof SKELETON>[] = [
  { name: 'tp_btf', programs: ['tb_switch'], note: 'sched_switch as a BTF-typed tracepoint' },
  { name: 'raw_tp', programs: ['rt_switch'], note: 'sched_switch as a raw tracepoint (no tracefs needed)' },
];

export function modeRodata(mode: ProbeMode): Partial<Rodata> {
  return {
    per_state: mode.perState,
    min_ns: mode.minUs * 1000,
    // -M in us, as a u64 of ns; none: the largest a JS number holds exactly (285 years).
    max_ns: mode.maxUs !== undefined ? mode.maxUs * 1000 : Number.MAX_SAFE_INTEGER,
    user_only: mode.userOnly,
    kernel_only: mode.kernelOnly,
  };
}

export function loadSpec(mode: ProbeMode): LoadSpec<typeof SKELETON> {
  return { skeleton: SKELETON, paths: PATHS, rodata: modeRodata(mode), configure: (obj) => StackMap.resize(obj, 16384) };
}
