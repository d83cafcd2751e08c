// profile's probe: one program on a software cpu-clock perf event per CPU
// (src/core/bpf/perf.ts), and which stacks it takes, from the options.
import type { AttachPath } from '../../core/bpf/paths.js';
import type { LoadSpec } from '../../core/tool.js';
import { attachCpuSampling } from '../../core/bpf/perf.js';
import { ENUMS, SKELETON } from '../../generated/profile.js';

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
