// rubyobjnew's probe: the five allocation probes of libruby
// (src/bpf/rubyobjnew.bpf.c), the check that a ruby has them, and the
// .rodata of -P, --site and --sample.
import type { BinaryFile } from '../../core/linux/procfiles.js';
import { RUBY_PROVIDER, requireRubyProbes } from '../../core/linux/ruby.js';
import type { BpfLink, BpfObject } from '../../core/bpf/object.js';
import { SKELETON, type ProgramName, type Rodata } from '../../generated/rubyobjnew.js';

export const PROBES: { program: ProgramName; name: string }[] = [
  { program: 'object_create', name: 'object__create' },
  { program: 'string_create', name: 'string__create' },
  { program: 'array_create', name: 'array__create' },
  { program: 'hash_create', name: 'hash__create' },
  { program: 'symbol_create', name: 'symbol__create' },
];

export const PATH_NOTE = 'USDT probes ruby:object__create, string__create, array__create, hash__create, symbol__create, with semaphores';

/** The binary must have the five probes. */
export function checkAllocProbes(binary: string | BinaryFile): void {
  requireRubyProbes(binary, PROBES.map((p) => p.name));
}

export function attachAllocProbes(obj: BpfObject<typeof SKELETON>, binary: BinaryFile, pid?: number): BpfLink[] {
  return PROBES.map((p) => obj.program(p.program).attachUsdt({ binary, provider: RUBY_PROVIDER, name: p.name, pid }));
}

export function allocsRodata(mode: { byProcess: boolean; bySite: boolean; sample: number }): Partial<Rodata> {
  return { by_process: mode.byProcess, by_site: mode.bySite, sample_every: mode.sample };
}
