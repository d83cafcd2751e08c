// rubycalls' probe: the four USDT probes of libruby (src/bpf/rubycalls.bpf.c),
// the check that a ruby has them, and the .rodata of -P and -L. Entries only
// without -L (a count needs no return), both with it.
import type { BinaryFile } from '../../core/linux/procfiles.js';
import { RUBY_PROVIDER, requireRubyProbes } from '../../core/linux/ruby.js';
import type { BpfLink, BpfObject } from '../../core/bpf/object.js';
import { SKELETON, type ProgramName, type Rodata } from '../../generated/rubycalls.js';

const ENTRIES: { program: ProgramName; name: string }[] = [
  { program: 'method_entry', name: 'method__entry' },
  { program: 'cmethod_entry', name: 'cmethod__entry' },
];
const RETURNS: { program: ProgramName; name: string }[] = [
  { program: 'method_return', name: 'method__return' },
  { program: 'cmethod_return', name: 'cmethod__return' },
];

export function probesFor(latency: boolean): { program: ProgramName; name: string }[] {
  return latency ? [...ENTRIES, ...RETURNS] : ENTRIES;
}

export const PATH_NOTE = 'USDT probes ruby:method__entry/return (methods in Ruby) and ruby:cmethod__entry/return (methods in C), with semaphores';

/** The binary must have the four probes. */
export function checkCallProbes(binary: string | BinaryFile): void {
  requireRubyProbes(binary, probesFor(true).map((p) => p.name));
}

export function attachCallProbes(obj: BpfObject<typeof SKELETON>, binary: BinaryFile, latency: boolean, pid?: number): BpfLink[] {
  return probesFor(latency).map((p) => obj.program(p.program).attachUsdt({ binary, provider: RUBY_PROVIDER, name: p.name, pid }));
}

export function callsRodata(mode: { byProcess: boolean; latency: boolean }): Partial<Rodata> {
  return { by_process: mode.byProcess, want_latency: mode.latency };
}

/** Maps a mode does not use shrink to one entry. */
export function sizeMaps(obj: BpfObject<typeof SKELETON>, latency: boolean): void {
  if (!latency) obj.map('stacks').maxEntries = 1;
}
