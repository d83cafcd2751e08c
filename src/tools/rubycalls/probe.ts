// rubycalls' probe: the four USDT probes of libruby (src/bpf/rubycalls.bpf.c),
// the check that a ruby has them, and the .rodata of -P and -L. Entries only
// without -L (a count needs no return), both with it.
import { RbtraceError } from '../../core/errors.js';
import { ElfFile } from '../../core/elf.js';
import type { BinaryFile } from '../../core/procfiles.js';
import type { BpfLink, BpfObject } from '../../core/object.js';
import { SKELETON, type ProgramName, type Rodata } from '../../generated/rubycalls.js';

export const PROVIDER = 'ruby';
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

/** The binary must have the probes in its .note.stapsdt. */
export function checkCallProbes(binary: string | BinaryFile): void {
  const notes = ElfFile.open(binary).sdtNotes();
  const have = new Set(notes.filter((n) => n.provider === PROVIDER).map((n) => n.name));
  const missing = probesFor(true).find((p) => !have.has(p.name));
  if (missing) {
    throw new RbtraceError(`${binary} has no USDT probe ${PROVIDER}:${missing.name}: this Ruby was built without DTrace probes`,
      { hint: 'use a ruby built with ./configure --enable-dtrace (Debian and Ubuntu packages are)' });
  }
}

export function attachCallProbes(obj: BpfObject<typeof SKELETON>, binary: BinaryFile, latency: boolean, pid?: number): BpfLink[] {
  return probesFor(latency).map((p) => obj.program(p.program).attachUsdt({ binary, provider: PROVIDER, name: p.name, pid }));
}

export function callsRodata(mode: { byProcess: boolean; latency: boolean }): Partial<Rodata> {
  return { by_process: mode.byProcess, want_latency: mode.latency };
}

/** Maps a mode does not use shrink to one entry. */
export function sizeMaps(obj: BpfObject<typeof SKELETON>, latency: boolean): void {
  if (!latency) obj.map('stacks').maxEntries = 1;
}
