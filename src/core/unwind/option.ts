// --unwind fp|dwarf, as every tool that takes user stacks spells it
// (profile, strlat --stack): how user stacks are walked, and where the dwarf
// way works.
import { Option } from 'commander';
import { RbtraceError } from '../errors.js';

export type UnwindMode = 'fp' | 'dwarf';

/** The option; `more` adds what the tool's dwarf mode gives besides (e.g. "Ruby frames"). */
export function unwindOption(more = ''): Option {
  return new Option('--unwind <how>', `user stacks: fp (frame pointers, by the kernel) or dwarf (a copy of the stack unwound with .eh_frame CFI${more ? `; ${more}` : ''}; x86-64)`)
    .choices(['fp', 'dwarf']).default('fp');
}

/** --unwind dwarf walks x86-64 registers only (src/core/unwind/unwinder.ts): elsewhere, one line. */
export function requireDwarfArch(): void {
  if (process.arch !== 'x64') {
    throw new RbtraceError(`--unwind dwarf unwinds x86-64 stacks only (this is ${process.arch})`, { hint: 'use --unwind fp' });
  }
}
