// opensnoop's probe: which programs of src/bpf/opensnoop.bpf.c load on which
// attach path, the .rodata its filters become, and the ring buffer's size.
import type { AttachPath } from '../../core/bpf/paths.js';
import type { BpfObject } from '../../core/bpf/object.js';
import type { LoadSpec } from '../../core/tool.js';
import { syscallNumber } from '../../core/linux/names.js';
import { syscallPrefix } from '../../core/linux/system.js';
import { SKELETON, type ProgramName, type Rodata } from '../../generated/opensnoop.js';

/** The kernel-side filters of the command's options. */
export interface ProbeFilters {
  failed?: boolean;
  tid?: number;
  uid?: number;
  /** Ring buffer size in 4 KiB pages (a power of two). */
  bufferPages: number;
}

export const DEFAULT_BUFFER_PAGES = 256; // 1 MiB
export const MAX_BUFFER_PAGES = 65536;   // 256 MiB

/** arm64 (and every newer arch) has no open(2): only openat and openat2. */
function hasOpen(): boolean {
  return syscallNumber('open') !== undefined;
}

/** Best first; the open() programs only where the arch has the syscall. */
export function pathsFor(): AttachPath<typeof SKELETON>[] {
  const open = hasOpen();
  const calls = (open ? ['open', 'openat', 'openat2'] : ['openat', 'openat2']);
  const prefix = syscallPrefix();
  const fexit = calls.map((c) => `fx_${c}` as ProgramName);
  return [
    {
      name: 'fentry',
      programs: fexit,
      attachTargets: Object.fromEntries(calls.map((c) => [`fx_${c}`, `${prefix}${c}`])),
      note: 'fexit on the open entry points: arguments and result in one program, no syscall tracepoints (so no slow path for other syscalls)',
    },
    {
      name: 'tracepoint',
      programs: calls.flatMap((c) => [`tp_enter_${c}`, `tp_exit_${c}`] as ProgramName[]),
      note: 'syscalls:sys_{enter,exit}_open{,at,at2} tracepoints: only these syscalls run a program',
    },
    {
      name: 'raw_tp',
      programs: ['rt_enter', 'rt_exit'],
      note: 'raw_syscalls sys_enter/sys_exit raw tracepoints, filtered by syscall number: no tracefs needed, a program on every syscall',
    },
  ];
}

export function filterRodata(filters: Omit<ProbeFilters, 'bufferPages'>): Partial<Rodata> {
  const nr = (name: string) => syscallNumber(name) ?? -1;
  return {
    self_tgid: process.pid,
    targ_tid: filters.tid ?? 0,
    targ_uid: filters.uid ?? -1,
    only_failed: Boolean(filters.failed),
    nr_open: nr('open'),
    nr_openat: nr('openat'),
    nr_openat2: nr('openat2'),
  };
}

export function sizeMaps(obj: BpfObject<typeof SKELETON>, bufferPages = DEFAULT_BUFFER_PAGES): void {
  obj.map('events').maxEntries = bufferPages * 4096;
}

export function loadSpec(filters: ProbeFilters): LoadSpec<typeof SKELETON> {
  return {
    skeleton: SKELETON,
    paths: pathsFor(),
    rodata: filterRodata(filters),
    configure: (obj) => sizeMaps(obj, filters.bufferPages),
  };
}
