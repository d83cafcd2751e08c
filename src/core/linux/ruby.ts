// What the Ruby tools (gcstat, rubycalls, rubyobjnew) share: the libruby a
// target runs, and the check that it has the USDT probes a tool needs.
import { RbtraceError } from '../errors.js';
import { ElfFile } from '../elf/elf.js';
import { findLibrary } from './process.js';
import type { BinaryFile } from './procfiles.js';
import { findRubyBinary } from '../bpf/uprobes.js';
import { hasBpfCookie } from '../bpf/usdt-pids.js';

export const RUBY_PROVIDER = 'ruby';

/** The binary must have every probe ruby:NAME in its .note.stapsdt. */
export function requireRubyProbes(binary: string | BinaryFile, names: string[]): void {
  const notes = ElfFile.open(binary).sdtNotes();
  const have = new Set(notes.filter((n) => n.provider === RUBY_PROVIDER).map((n) => n.name));
  const missing = names.find((n) => !have.has(n));
  if (missing) {
    throw new RbtraceError(`${binary} has no USDT probe ${RUBY_PROVIDER}:${missing}${notes.length === 0 ? ' (no .note.stapsdt at all)' : ''}: this Ruby was built without DTrace probes`,
      { hint: 'use a ruby built with ./configure --enable-dtrace (Debian 12\'s ruby3.1 is; Debian 13\'s ruby3.3 is not)' });
  }
}

/**
 * The libruby (or static ruby) of the target, or --lib's, with `probes`
 * checked; without -p the kernel must have BPF cookies (USDT in a shared
 * library on every process).
 */
export function rubyTargetBinary(target: { pid?: number; command?: { argv: string[] } }, lib: string | undefined, probes: string[]): BinaryFile {
  const binary = lib !== undefined ? findLibrary(lib, target.pid) : findRubyBinary(target);
  requireRubyProbes(binary, probes);
  if (target.pid === undefined && !hasBpfCookie()) {
    throw new RbtraceError('this kernel has no BPF cookies (5.15+): USDT in a shared library attaches only to one process', { hint: 'give the ruby with -p PID' });
  }
  return binary;
}
