// mallocstat's allocator: the file holding the allocator a target uses
// (its libc, or --lib), and the functions of it that are probed, with file
// offsets read from its ELF symbols.
import { ElfFile, stripVersion } from '../../core/elf/elf.js';
import { RbtraceError } from '../../core/errors.js';
import { executableOf, givenFile, libraryMatches, libraryOfPid, readComm, resolveCommand, systemLibrary } from '../../core/linux/process.js';
import { openFile, type BinaryFile } from '../../core/linux/procfiles.js';
import { ENUMS, type ProgramName } from '../../generated/mallocstat.js';

/** The functions, in the order of enum ms_func, with the program that probes each. */
export const FUNCTIONS = [
  { name: 'malloc', id: ENUMS.MS_MALLOC, program: 'ms_malloc', required: true },
  { name: 'calloc', id: ENUMS.MS_CALLOC, program: 'ms_calloc' },
  { name: 'realloc', id: ENUMS.MS_REALLOC, program: 'ms_realloc' },
  { name: 'reallocarray', id: ENUMS.MS_REALLOCARRAY, program: 'ms_reallocarray' },
  { name: 'free', id: ENUMS.MS_FREE, program: 'ms_free', required: true },
  { name: 'posix_memalign', id: ENUMS.MS_POSIX_MEMALIGN, program: 'ms_posix_memalign' },
  { name: 'aligned_alloc', id: ENUMS.MS_ALIGNED_ALLOC, program: 'ms_aligned_alloc' },
  { name: 'memalign', id: ENUMS.MS_MEMALIGN, program: 'ms_memalign' },
] as const;

/** Always timed: their returns end the nesting (see mallocstat.bpf.c), and realloc is where copies hide. */
const ALWAYS_TIMED = new Set<string>(['realloc', 'reallocarray']);

/** A probed function: where it is, and the other names that are the same code. */
export interface ProbedFunction {
  name: string;
  id: number;
  program: ProgramName;
  symbol: string;
  offset: number;
  /** e.g. memalign, when aligned_alloc is an alias of it (glibc): counted as one. */
  aliases: string[];
  /** Its return probed and timed in BPF (realloc always: the nesting needs it). */
  timed: boolean;
  /** Its latency reported: -L only (realloc's is measured without it, not shown). */
  reported: boolean;
}

/** The file holding the allocator a target uses; throws a one-line error when there is none. */
export function findAllocator(target: { pid?: number; command?: { argv: string[] } }, lib: string | undefined): BinaryFile {
  const name = lib ?? 'c';
  if (name.includes('/')) return givenFile(name, target.pid);
  if (target.pid) {
    const mapped = libraryOfPid(target.pid, name);
    if (mapped) return mapped;
    const exe = executableOf(target.pid);
    const what = lib ? name : 'libc';
    const hint = exe && definesMalloc(exe)
      ? `its allocator is statically linked into ${exe}: trace it with --lib ${exe}`
      : lib ? 'is it loaded (LD_PRELOAD, dlopen)? give the library the process maps' : 'a statically linked program without symbols cannot be traced';
    throw new RbtraceError(`process ${target.pid} (${readComm(target.pid)}) does not map ${what}`, { hint });
  }
  if (target.command && !lib) {
    // The command is held before exec: look at the file it will run.
    const cmd = resolveCommand(target.command.argv[0]);
    let elf: ElfFile | undefined;
    try {
      elf = cmd ? ElfFile.open(cmd) : undefined;
    } catch {
      elf = undefined; // a script (#!): its interpreter uses the system's libc
    }
    if (elf) {
      const needed = elf.needed();
      const libc = needed.find((n) => libraryMatches(n, 'c'));
      if (libc) return openFile(systemLibrary(libc) ?? systemOrFail('c'));
      if (needed.length === 0) {
        const hint = definesMalloc(elf.path)
          ? `its allocator is statically linked into it: trace it with --lib ${elf.path}`
          : 'a statically linked program without symbols cannot be traced';
        throw new RbtraceError(`${target.command.argv[0]} is statically linked: it uses no libc`, { hint });
      }
    }
  }
  return openFile(systemOrFail(name));
}

function systemOrFail(name: string): string {
  const found = systemLibrary(name);
  if (!found) throw new RbtraceError(`cannot find library '${name}' on this system`, { hint: 'give its full path with --lib' });
  return found;
}

function definesMalloc(path: BinaryFile | string): boolean {
  try {
    return ElfFile.open(path).definesFunction('malloc');
  } catch {
    return false;
  }
}

/**
 * The functions of `binary` to probe (prefix + name), with file offsets.
 * malloc and free must be there; the others are probed when present.
 * Names at one address (glibc: aligned_alloc and memalign) are probed once.
 */
export function resolveAllocator(binary: BinaryFile | string, prefix: string, latency: boolean, libGiven = false): { probed: ProbedFunction[]; missing: string[] } {
  const elf = ElfFile.open(binary);
  const byName = new Map<string, number>();
  for (const s of elf.functions()) {
    const n = stripVersion(s.name);
    if (!byName.has(n) || s.table === '.dynsym') byName.set(n, s.value);
  }
  const missing = FUNCTIONS.filter((f) => !byName.has(prefix + f.name)).map((f) => prefix + f.name);
  const requiredMissing = FUNCTIONS.filter((f) => 'required' in f && !byName.has(prefix + f.name)).map((f) => prefix + f.name);
  if (requiredMissing.length) {
    const hint = elf.functions().length === 0
      ? 'the file has no symbols (stripped): give the allocator library with --lib'
      : prefix || libGiven ? `is it the allocator, with these names? nm -D ${binary} shows its names (--prefix adds one)`
        : 'give the allocator with --lib (and --prefix if its names have one)';
    throw new RbtraceError(`no ${requiredMissing.join(', ')} in ${binary}`, { hint });
  }
  const probed: ProbedFunction[] = [];
  const byAddress = new Map<number, ProbedFunction>();
  for (const f of FUNCTIONS) {
    const addr = byName.get(prefix + f.name);
    if (addr === undefined) continue;
    const same = byAddress.get(addr);
    if (same) {
      same.aliases.push(f.name);
      continue;
    }
    const offset = elf.fileOffset(addr);
    if (offset === undefined) throw new RbtraceError(`${prefix}${f.name} in ${binary} is not in a loadable segment`);
    const p: ProbedFunction = {
      name: f.name, id: f.id, program: f.program, symbol: prefix + f.name, offset, aliases: [],
      timed: latency || ALWAYS_TIMED.has(f.name), reported: latency,
    };
    byAddress.set(addr, p);
    probed.push(p);
  }
  // An alias of a realloc-family function must keep it timed (the nesting needs its return).
  for (const p of probed) if (p.aliases.some((a) => ALWAYS_TIMED.has(a))) p.timed = true;
  return { probed, missing };
}

export function displayName(p: ProbedFunction): string {
  return [p.name, ...p.aliases].join('/');
}
