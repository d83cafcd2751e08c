// --unwind fp|dwarf, as every tool that takes user stacks spells it
// (profile, strlat --stack, mallocstat --leaks): how user stacks are walked,
// and where the dwarf way works. profile also takes auto, its default:
// dwarf for a ruby (its Ruby frames need it), frame pointers otherwise.
import { Option } from 'commander';
import { RbtraceError } from '../errors.js';
import type { Target } from '../target.js';
import { hostUnwindArch } from './arch.js';
import { processRunsRuby, programRunsRuby } from './ruby-target.js';
import { resolveCommand } from '../linux/process.js';

export type UnwindMode = 'fp' | 'dwarf';

/** The option; `more` adds what the tool's dwarf mode gives besides (e.g. "Ruby frames"). */
export function unwindOption(more = '', o: { auto?: boolean } = {}): Option {
  const modes = `fp (frame pointers, by the kernel) or dwarf (a copy of the stack unwound with .eh_frame CFI${more ? `; ${more}` : ''}; x86-64 and arm64)`;
  return o.auto
    ? new Option('--unwind <how>', `user stacks: auto (dwarf for a ruby; else fp), ${modes}`).choices(['auto', 'fp', 'dwarf']).default('auto')
    : new Option('--unwind <how>', `user stacks: ${modes}`).choices(['fp', 'dwarf']).default('fp');
}

/** --unwind dwarf walks x86-64 and aarch64 registers (src/core/unwind/arch.ts): elsewhere, one line. */
export function requireDwarfArch(): void {
  if (!hostUnwindArch()) {
    throw new RbtraceError(`--unwind dwarf unwinds x86-64 and arm64 stacks only (this is ${process.arch})`, { hint: 'use --unwind fp' });
  }
}

/**
 * --unwind auto: dwarf where the target runs Ruby (-p a ruby process, or
 * -- CMD whose program is ruby or a ruby script) and the dwarf unwinder
 * works here (x86-64, arm64); frame pointers otherwise, and for every process (a
 * stack copy per sample of every process costs more than most want by default).
 */
export function autoUnwind(target: Target): { mode: UnwindMode; why: string } {
  const program = target.command ? resolveCommand(target.command.argv[0]) : undefined;
  const ruby = target.pid !== undefined ? processRunsRuby(target.pid) : program !== undefined && programRunsRuby(program);
  if (!ruby) return { mode: 'fp', why: target.pid !== undefined || target.command ? 'the target does not run ruby' : 'every process' };
  if (!hostUnwindArch()) return { mode: 'fp', why: `a ruby, but the dwarf unwinder is x86-64 and arm64 only (this is ${process.arch}): native frames only` };
  // arm64: Ruby 3.1's frames and names are checked (test/vm/guest/profile-unwind.check.ts);
  // a version without an arm64 layout (3.3) is said once and shows native frames, as anywhere.
  return { mode: 'dwarf', why: 'the target runs ruby: its Ruby frames need the dwarf unwinder' };
}
