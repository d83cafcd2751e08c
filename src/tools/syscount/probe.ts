// syscount's probe: which programs of src/bpf/syscount.bpf.c load on which
// attach path, the .rodata its filters become, and the maps' sizes. The
// command (index.ts) and the exporter (metrics.ts) both load through here.
import { hostArch, type ArchInfo } from '../../core/bpf/arch.js';
import type { AttachPath } from '../../core/bpf/paths.js';
import type { BpfObject } from '../../core/bpf/object.js';
import type { LoadSpec } from '../../core/tool.js';
import { syscallName, syscallNumber } from '../../core/linux/names.js';
import { DEFINES, SKELETON, type ProgramName, type Rodata } from '../../generated/syscount.js';

/** What the loaded programs count: per syscall or per process, with time, with histograms. */
export interface ProbeMode {
  byProcess: boolean;
  latency: boolean;
  hist: boolean;
}

/** The kernel-side filters of the command's options. */
export interface ProbeFilters {
  failures?: boolean;
  errno?: number;
  tid?: number;
  syscalls?: number[];
  comm?: string;
}

/**
 * The programs on the syscall dispatcher, per architecture (src/core/bpf/arch.ts
 * names the function). arm64's invoke_syscall returns nothing, so its
 * programs read the result from the registers at exit (fa_*).
 */
const DISPATCHER_PROGRAMS: Record<ArchInfo['node'], { enter: ProgramName; exit: ProgramName; count: ProgramName }> = {
  x64: { enter: 'fe_enter', exit: 'fe_exit', count: 'fe_count' },
  arm64: { enter: 'fa_enter', exit: 'fa_exit', count: 'fa_count' },
};

/**
 * Which programs a path loads. Count mode needs only the exit side, in its
 * *_count variant that uses no start map. Latency keeps each thread's entry
 * time in task storage (5.11+) or, without it (5.10), in a hash keyed by
 * thread id (the *h_* programs): see syscount.bpf.c.
 */
export function pathsFor(latency: boolean, taskStorage = true, arch: ArchInfo = hostArch()): AttachPath<typeof SKELETON>[] {
  const both = (task: ProgramName[], tid: ProgramName[], count: ProgramName): ProgramName[] => {
    if (!latency) return [count];
    return taskStorage ? task : tid;
  };
  const d = DISPATCHER_PROGRAMS[arch.node];
  const func = arch.syscallDispatcher.func;
  const fentry = latency ? [d.enter, d.exit] : [d.count];
  return [
    {
      name: 'fentry',
      programs: fentry,
      attachTargets: Object.fromEntries(fentry.map((p) => [p, func])),
      note: arch.node === 'x64'
        ? 'fentry/fexit on x64_sys_call, the dispatcher of native syscalls on x86_64 since Linux 6.9; other tasks keep the fast syscall path'
        : `fentry/fexit on ${func}, the dispatcher of every ${arch.machine} syscall (AArch32 tasks' are skipped); other tasks keep the fast syscall path`,
    },
    {
      name: 'tp_btf',
      programs: both(['tb_enter', 'tb_exit'], ['tbh_enter', 'tbh_exit'], 'tb_count'),
      note: 'raw_syscalls sys_enter/sys_exit as BTF-typed tracepoints (no kprobe path: a kretprobe per syscall costs more than these)',
    },
    {
      name: 'raw_tp',
      programs: both(['rt_enter', 'rt_exit'], ['rth_enter', 'rth_exit'], 'rt_count'),
      note: 'raw_syscalls sys_enter/sys_exit raw tracepoints (no tracefs needed)',
    },
  ];
}

/** The most syscall numbers --syscall's bitmap holds. */
export const FILTER_SYSCALLS = DEFINES.SYSCOUNT_FILTER_BYTES * 8;

function bitmap(nrs: number[]): number[] {
  const bits = new Array<number>(DEFINES.SYSCOUNT_FILTER_BYTES).fill(0);
  for (const nr of nrs) bits[nr >> 3] |= 1 << (nr & 7);
  return bits;
}

/** Entries of the per-syscall array: the arch's highest number + 1, within the object's ceiling. */
function syscallSlots(): number {
  let max = 0;
  for (let nr = 0; nr < 1024; nr++) if (!syscallName(nr).startsWith('[unknown')) max = nr;
  return Math.min(1024, max + 1);
}

/** The syscall numbers syscount.bpf.c treats specially (execve for -- CMD, rt_sigreturn's -1, fork's second return). */
export function syscallNumbersRodata(): Pick<Rodata, 'nr_execve' | 'nr_execveat' | 'nr_rt_sigreturn' | 'nr_clone' | 'nr_clone3' | 'nr_fork' | 'nr_vfork'> {
  const nr = (name: string) => syscallNumber(name) ?? -1;
  return {
    nr_execve: nr('execve'), nr_execveat: nr('execveat'), nr_rt_sigreturn: nr('rt_sigreturn'),
    nr_clone: nr('clone'), nr_clone3: nr('clone3'), nr_fork: nr('fork'), nr_vfork: nr('vfork'),
  };
}

/** The .rodata of a command's filters. */
export function filterRodata(mode: ProbeMode, filters: ProbeFilters): Partial<Rodata> {
  const onlyErrno = filters.errno ?? 0;
  return {
    by_process: mode.byProcess,
    want_latency: mode.latency,
    want_hist: mode.hist,
    only_failed: Boolean(filters.failures) || onlyErrno !== 0,
    only_errno: onlyErrno,
    targ_tid: filters.tid ?? 0,
    self_tgid: process.pid,
    filter_syscalls: filters.syscalls !== undefined,
    syscall_bitmap: bitmap(filters.syscalls ?? []),
    filter_comm: filters.comm !== undefined,
    targ_comm: filters.comm ?? '',
    ...syscallNumbersRodata(),
  };
}

export function sizeMaps(obj: BpfObject<typeof SKELETON>, mode: ProbeMode, taskStorage = true): void {
  const slots = syscallSlots();
  // Only the start map the loaded programs use is created: none in count
  // mode, and never task storage where the kernel has none (5.10).
  obj.map('starts').autocreate = mode.latency && taskStorage;
  obj.map('starts_tid').autocreate = mode.latency && !taskStorage;
  obj.map('syscalls').maxEntries = slots;
  obj.map('hists').maxEntries = mode.hist ? slots : 1;
  // Unused maps shrink to one entry (hashes are preallocated).
  if (!mode.byProcess) obj.map('procs').maxEntries = 1;
  obj.map('errnos').maxEntries = 1; // only the exporter counts per errno (it resizes this)
}

/** What ctx.load() (or the exporter's SourceContext.load) takes for these options. */
export function loadSpec(mode: ProbeMode, filters: ProbeFilters, taskStorage: boolean): LoadSpec<typeof SKELETON> {
  return {
    skeleton: SKELETON,
    paths: pathsFor(mode.latency, taskStorage),
    rodata: filterRodata(mode, filters),
    configure: (obj) => sizeMaps(obj, mode, taskStorage),
  };
}
