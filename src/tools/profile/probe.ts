// profile's probe: one program on a software cpu-clock perf event per CPU
// (src/core/bpf/perf.ts), and which stacks it takes, from the options. Two
// objects: profile.bpf.c (stack ids through frame pointers, --unwind fp) and
// rbstack.bpf.c (a copy of the user stack, unwound in user space with CFI,
// and Ruby control frames: --unwind dwarf).
import type { AttachPath } from '../../core/bpf/paths.js';
import type { BpfObject } from '../../core/bpf/object.js';
import type { LoadSpec } from '../../core/tool.js';
import { attachCpuSampling } from '../../core/bpf/perf.js';
import { ENUMS, SKELETON } from '../../generated/profile.js';
import { SKELETON as RBSTACK, rbstack_sample_layout } from '../../generated/rbstack.js';

export const DEFAULT_HZ = 49;

export function pathsFor(hz: number): AttachPath<typeof SKELETON>[] {
  return [{
    name: 'perf_event',
    programs: ['profile_sample'],
    note: 'a software cpu-clock perf event per CPU; the process filter is in BPF',
    attach: (o) => attachCpuSampling(o, 'profile_sample', hz),
  }];
}

/** What ctx.load() takes: `hz` samples a second per CPU, user and/or kernel stacks. */
export function loadSpec(hz: number, stacks: { userOnly?: boolean; kernelOnly?: boolean }): LoadSpec<typeof SKELETON> {
  return {
    skeleton: SKELETON,
    rodata: { stacks: stacks.userOnly ? ENUMS.PROFILE_USER_ONLY : stacks.kernelOnly ? ENUMS.PROFILE_KERNEL_ONLY : ENUMS.PROFILE_BOTH },
    paths: pathsFor(hz),
  };
}

/** --unwind dwarf: rbstack_sample copies each sample's user stack (16 KiB at most) and Ruby control frames. */
export function dwarfLoadSpec(hz: number, beforeAttach?: (obj: BpfObject<typeof RBSTACK>) => void): LoadSpec<typeof RBSTACK> {
  return {
    skeleton: RBSTACK,
    paths: [{
      name: 'perf_event',
      programs: ['rbstack_sample'],
      note: 'a software cpu-clock perf event per CPU; user stacks copied (16 KiB) and unwound in user space with .eh_frame',
      attach: (o) => {
        beforeAttach?.(o);
        return attachCpuSampling(o, 'rbstack_sample', hz);
      },
    }],
  };
}

/** Records the samples ring buffer holds (8 MiB of struct rbstack_sample). */
const RING_RECORDS = Math.floor((8 << 20) / rbstack_sample_layout.size);

/**
 * How often rbstack's ring buffers are polled, ms: as often as the sample
 * rate needs, not every 10 ms. At 49 Hz the timer's wake-ups were most of
 * rbtrace's own CPU (measured idle: 2 % of a core per ring buffer). A quarter
 * of the ring (~370 records of 22 KiB) between polls at most, 10-200 ms.
 */
export function dwarfPollMs(hz: number, cpus: number): number {
  return Math.max(10, Math.min(200, (0.25 * RING_RECORDS * 1000) / (hz * cpus)));
}
