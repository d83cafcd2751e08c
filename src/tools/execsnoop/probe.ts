// execsnoop's probe: which programs of src/bpf/execsnoop.bpf.c load on which
// attach path, the .rodata its filters become, and the scratch map's size.
// The command (index.ts) and the exporter (metrics.ts) both load through here.
import type { AttachPath } from '../../core/bpf/paths.js';
import type { BpfObject } from '../../core/bpf/object.js';
import type { LoadSpec } from '../../core/tool.js';
import { syscallPrefix } from '../../core/linux/system.js';
import { possibleCpus } from '../../core/bpf/maps.js';
import { SKELETON, type ProgramName } from '../../generated/execsnoop.js';

/** Successful execs only: one cheap record each. */
const SCHED_PATH: AttachPath<typeof SKELETON> = {
  name: 'sched',
  programs: ['sched_exec'],
  note: 'raw_tp/sched_process_exec: one event per successful exec, no syscall hooks (-x needs a syscall path)',
};

/** One hook of the execve and execveat syscalls: its entry programs (the argv) and exit programs (the result). */
interface SyscallHook {
  name: string;
  enter: [execve: ProgramName, execveat: ProgramName];
  exit: [execve: ProgramName, execveat: ProgramName];
  /** fentry/fexit: the kernel functions, chosen at run time (the syscall prefix is the arch's). */
  fentry?: boolean;
  note: string;
}

const SYSCALL_HOOKS: SyscallHook[] = [
  {
    name: 'fentry',
    enter: ['fe_enter_execve', 'fe_enter_execveat'],
    exit: ['fe_exit_execve', 'fe_exit_execveat'],
    fentry: true,
    note: 'fentry/fexit on the execve entry points: no syscall tracepoints, so no slow path for other syscalls',
  },
  {
    name: 'kprobe',
    enter: ['kp_enter_execve', 'kp_enter_execveat'],
    exit: ['kp_exit_execve', 'kp_exit_execveat'],
    note: 'kprobes on the execve entry points',
  },
  {
    name: 'tracepoint',
    enter: ['tp_enter_execve', 'tp_enter_execveat'],
    exit: ['tp_exit_execve', 'tp_exit_execveat'],
    note: 'syscalls:sys_{enter,exit}_execve{,at} tracepoints',
  },
];

/**
 * The syscall paths, with both sides (the command pairs each ENTER's argv
 * with its EXIT's result) or only the exit side (one small record per exec,
 * with its result: the exporter's count).
 */
function syscallPaths(sides: 'both' | 'exit'): AttachPath<typeof SKELETON>[] {
  const prefix = syscallPrefix();
  return SYSCALL_HOOKS.map((h) => {
    const programs = sides === 'both' ? [...h.enter, ...h.exit] : [...h.exit];
    const funcs = (pair: ProgramName[]) => [[pair[0], `${prefix}execve`], [pair[1], `${prefix}execveat`]];
    return {
      name: h.name,
      programs,
      ...(h.fentry ? { attachTargets: Object.fromEntries(sides === 'both' ? [...funcs(h.enter), ...funcs(h.exit)] : funcs(h.exit)) } : {}),
      note: h.note,
    };
  });
}

/** Best first. Without -x the sched path wins; the others stay as fallbacks (and can be forced). */
export function attachPaths(wantFailures: boolean): AttachPath<typeof SKELETON>[] {
  const syscalls = syscallPaths('both');
  return wantFailures ? syscalls : [SCHED_PATH, ...syscalls];
}

/** One scratch slot per possible CPU (see the scratch map in execsnoop.bpf.c). */
export function sizeScratch(obj: BpfObject<typeof SKELETON>): void {
  obj.map('scratch').maxEntries = possibleCpus();
}

/** What ctx.load() takes for the command's options. */
export function loadSpec(opts: { fails?: boolean; maxArgs: number; uid?: number }): LoadSpec<typeof SKELETON> {
  return {
    skeleton: SKELETON,
    paths: attachPaths(Boolean(opts.fails)),
    rodata: { max_args: opts.maxArgs, targ_uid: opts.uid ?? -1 },
    configure: sizeScratch,
  };
}

/** The exporter's load: every exec's result, from the syscall paths' exit programs alone. */
export function resultsLoadSpec(): LoadSpec<typeof SKELETON> {
  return { skeleton: SKELETON, paths: syscallPaths('exit'), rodata: {}, configure: sizeScratch };
}
