// mallocstat's probe: uprobes on the allocator's functions (allocator.ts
// finds them), a uretprobe on the timed ones and on every allocation with
// --leaks, the .rodata of the options, and the maps sized for the mode.
import type { BpfLink, BpfObject } from '../../core/bpf/object.js';
import { probeUserProbes, type UserProbeSpec } from '../../core/bpf/uprobes.js';
import type { BinaryFile } from '../../core/linux/procfiles.js';
import { StackMap } from '../../core/stacks/index.js';
import { SKELETON } from '../../generated/mallocstat.js';
import { displayName, type ProbedFunction } from './allocator.js';

/** Default of --max-allocs: bcc memleak's table size; about 100 bytes of kernel memory each, allocated only as blocks go live. */
export const DEFAULT_MAX_ALLOCS = 1_000_000;

export interface ProbeOptions {
  perProcess: boolean;
  leaks: boolean;
  maxAllocs: number;
  /** --all-processes: with -- CMD, probes in every process (see follow-uprobes.ts). */
  allProcesses: boolean;
  /** --leaks --unwind dwarf: a stack copy per allocation (ms_copies), not stack ids. */
  copies?: boolean;
}

/** Before load: the live map sized to --max-allocs, and the stack map only as large as the mode needs. */
export function configureLeaks(obj: BpfObject<typeof SKELETON>, leaks: boolean, maxAllocs: number, copies = false): void {
  obj.map('live').maxEntries = leaks ? maxAllocs : 1;
  // A stack map is preallocated (1 KiB a slot): count mode and stack copies need none.
  if (!leaks || copies) StackMap.resize(obj, 1);
  // The smallest ring buffer (a page) where no copy is sent.
  if (!(leaks && copies)) obj.map('ms_copies').maxEntries = 4096;
}

/** The functions probed at their return too: timed ones, and with --leaks every allocation (its address is known at its return only). */
export function returnsOf(probed: ProbedFunction[], leaks: boolean): ProbedFunction[] {
  return probed.filter((p) => p.timed || (leaks && p.name !== 'free'));
}

/** What loadUserProbes() takes: the programs of `probed`, attached to `binary`. */
export function uprobeSpec(binary: BinaryFile, probed: ProbedFunction[], o: ProbeOptions): UserProbeSpec<typeof SKELETON> {
  const timedMask = probed.filter((p) => p.timed).reduce((m, p) => m | (1 << p.id), 0);
  const returns = returnsOf(probed, o.leaks);
  const retMask = returns.reduce((m, p) => m | (1 << p.id), 0);
  return {
    skeleton: SKELETON,
    pathName: 'uprobe',
    note: `${binary}: ${probed.map(displayName).join(', ')}`,
    programs: [...probed.map((p) => p.program), 'ms_return', 'ms_exit', ...(o.leaks ? ['ms_exec' as const] : [])],
    rodata: { per_process: o.perProcess, self_tgid: process.pid, timed_mask: timedMask, ret_mask: retMask, leaks: o.leaks, leak_copies: Boolean(o.leaks && o.copies) },
    configure: (obj) => configureLeaks(obj, o.leaks, o.maxAllocs, o.copies),
    attachOnce: (obj) => [
      // Before any entry: a thread's `active` entry must go with the thread.
      obj.program('ms_exit').attachRawTracepoint('sched_process_exit'),
      ...(o.leaks ? [obj.program('ms_exec').attachRawTracepoint('sched_process_exec')] : []),
    ],
    // -p and -- CMD: breakpoints in the target's processes only (loadUserProbes).
    attachPerProcess: !o.allProcesses,
    attach: (obj, pid) => {
      const links: BpfLink[] = [];
      // Returns first: an entry recorded in `active` must never miss its return.
      for (const p of returns) {
        links.push(obj.program('ms_return').attachUprobe({ binary, offset: p.offset, retprobe: true, pid: pid ?? -1 }));
      }
      for (const p of probed) links.push(obj.program(p.program).attachUprobe({ binary, offset: p.offset, pid: pid ?? -1 }));
      return links;
    },
  };
}

/** For doctor: really load the malloc probe and attach it to the system's libc (for no process), then let go. */
export function probeUprobe(binary: BinaryFile, malloc: ProbedFunction): string {
  // pid: this process only, so no other process ever traps.
  probeUserProbes(SKELETON, [malloc.program], (obj) => obj.program(malloc.program).attachUprobe({ binary, offset: malloc.offset, pid: process.pid }));
  return `uprobe (${binary}:${malloc.symbol})`;
}
