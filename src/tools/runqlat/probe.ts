// runqlat's probe: which programs of src/bpf/runqlat.bpf.c load on which
// attach path, and the .rodata its options and the --cgroup target become.
import type { AttachPath } from '../../core/bpf/paths.js';
import type { BpfObject } from '../../core/bpf/object.js';
import type { LoadSpec } from '../../core/tool.js';
import type { CgroupDir } from '../../core/linux/cgroup.js';
import { ENUMS, SKELETON, type Rodata } from '../../generated/runqlat.js';

export type Split = 'all' | 'process' | 'thread' | 'cgroup';

export interface ProbeMode {
  split: Split;
  ms: boolean;
  worst: boolean;
  cgroup?: CgroupDir;
}

export const PATHS: AttachPath<typeof SKELETON>[] = [
  { name: 'tp_btf', programs: ['tb_wakeup', 'tb_wakeup_new', 'tb_switch'], note: 'sched_wakeup/_new, sched_switch as BTF-typed tracepoints' },
  { name: 'raw_tp', programs: ['rt_wakeup', 'rt_wakeup_new', 'rt_switch'], note: 'the same raw tracepoints (no tracefs needed)' },
];

const SPLIT: Record<Split, number> = { all: ENUMS.RQ_ALL, process: ENUMS.RQ_PROCESS, thread: ENUMS.RQ_THREAD, cgroup: ENUMS.RQ_CGROUP };

/** The cgroup's depth below the v2 root: the ancestor slot its id is in. */
function cgroupLevel(dir: CgroupDir): number {
  return dir.relative === '/' ? 0 : dir.relative.split('/').filter(Boolean).length;
}

export function modeRodata(mode: ProbeMode): Partial<Rodata> {
  return {
    split: SPLIT[mode.split],
    in_ms: mode.ms,
    want_worst: mode.worst,
    targ_cgroup_id: mode.cgroup?.id ?? 0,
    targ_cgroup_level: mode.cgroup ? cgroupLevel(mode.cgroup) : 0,
  };
}

export function sizeMaps(obj: BpfObject<typeof SKELETON>, mode: ProbeMode): void {
  if (mode.split === 'all') obj.map('hists').maxEntries = 1;
}

export function loadSpec(mode: ProbeMode): LoadSpec<typeof SKELETON> {
  return { skeleton: SKELETON, paths: PATHS, rodata: modeRodata(mode), configure: (obj) => sizeMaps(obj, mode) };
}
