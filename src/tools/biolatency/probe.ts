// biolatency's probe: which programs of src/bpf/biolatency.bpf.c load on
// which attach path, and the .rodata its options become.
import { tracepointArgCount } from '../../core/bpf/kernel-targets.js';
import type { AttachPath } from '../../core/bpf/paths.js';
import type { BpfObject } from '../../core/bpf/object.js';
import type { LoadSpec } from '../../core/tool.js';
import { kernelRelease } from '../../core/linux/system.js';
import { SKELETON, type Rodata } from '../../generated/biolatency.js';

/** What the loaded programs measure and how they split it. */
export interface ProbeMode {
  perDisk: boolean;   // -D
  perOp: boolean;     // -F
  queued: boolean;    // -Q
  ms: boolean;        // -m
  events: boolean;    // --events
  dev?: number;       // --disk, (major << 20) | minor
}

/**
 * Insert is loaded only with -Q: it is then essential (queued time without
 * it would silently be device time).
 */
export function pathsFor(queued: boolean): AttachPath<typeof SKELETON>[] {
  return [
    {
      name: 'tp_btf',
      programs: queued ? ['tb_insert', 'tb_issue', 'tb_complete'] : ['tb_issue', 'tb_complete'],
      note: 'block_rq_* as BTF-typed tracepoints',
    },
    {
      name: 'raw_tp',
      programs: queued ? ['rt_insert', 'rt_issue', 'rt_complete'] : ['rt_issue', 'rt_complete'],
      note: 'block_rq_* raw tracepoints (no tracefs needed)',
    },
  ];
}

/** block_rq_insert/issue took (q, rq) before 5.11 (commit a54895fa057c); the kernel's BTF says which it has. */
export function rqIsSecondArg(release = kernelRelease()): boolean {
  // The kernel's BTF says how many arguments block_rq_issue has (2: queue
  // and request, before 5.11 and where that was not backported).
  const args = tracepointArgCount('block_rq_issue');
  if (args !== undefined) return args >= 2;
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major < 5 || (major === 5 && minor < 11);
}

export function modeRodata(mode: ProbeMode): Partial<Rodata> {
  return {
    rq_second_arg: rqIsSecondArg(),
    per_disk: mode.perDisk,
    per_op: mode.perOp,
    queued: mode.queued,
    in_ms: mode.ms,
    want_events: mode.events,
    targ_dev: mode.dev ?? 0,
  };
}

export function sizeMaps(obj: BpfObject<typeof SKELETON>, mode: ProbeMode): void {
  // Ring buffers are at least a page: the smallest one when no record is sent.
  if (!mode.events) obj.map('events').maxEntries = 4096;
  if (mode.events) obj.map('hists').maxEntries = 1;
}

export function loadSpec(mode: ProbeMode): LoadSpec<typeof SKELETON> {
  return {
    skeleton: SKELETON,
    paths: pathsFor(mode.queued),
    rodata: modeRodata(mode),
    configure: (obj) => sizeMaps(obj, mode),
  };
}
