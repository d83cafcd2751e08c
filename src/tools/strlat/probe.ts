// strlat's probe: what src/bpf/strlat.bpf.c is attached to and how its maps
// are sized. A user-space function (the default, rb_str_new in the target's
// libruby, or --func/--lib) through a uprobe and a uretprobe on each of its
// addresses; a kernel function (--kfunc) through fentry/fexit where the
// kernel lets BPF trampolines attach (5.5+, the function in BTF), else a
// kprobe and a kretprobe (any function in kallsyms that is not notrace),
// chosen by really loading and attaching each in turn (src/core/bpf/paths.ts).
// RBTRACE_ATTACH / --attach force one of them (the kernel matrix checks both).
import { existsSync, readFileSync } from 'node:fs';
import { hostArch } from '../../core/bpf/arch.js';
import type { AttachPath, Loaded } from '../../core/bpf/paths.js';
import type { BpfObject } from '../../core/bpf/object.js';
import type { ToolContext } from '../../core/tool.js';
import { RbtraceError, UsageError } from '../../core/errors.js';
import { kernelBtfHas } from '../../core/bpf/kernel-targets.js';
import { findLibrary } from '../../core/linux/process.js';
import type { BinaryFile } from '../../core/linux/procfiles.js';
import { StackMap } from '../../core/stacks/index.js';
import {
  executableDefining, findRubyBinary, loadUserProbes, refuseGoUretprobes, resolveFunction, resolveFunctions, splitFunctionList,
  type NamedFunction, type ResolvedFunction,
} from '../../core/bpf/uprobes.js';
import { DEFINES, ENUMS, SKELETON, type ProgramName } from '../../generated/strlat.js';

/** Functions timed at once: each is two probes (and a uprobe hit costs µs). */
export const MAX_FUNCS = DEFINES.STRLAT_MAX_FUNCS;

/** The histogram's unit: the BPF side divides each latency by `div` (.rodata unit_div). */
export interface Unit {
  name: string;
  div: number;
}

export interface TracedFunction {
  /** As the user named it (or as a pattern matched it). */
  name: string;
  /** What the table's title says of it (the raw symbol when demangled, aliases). */
  label: string;
}

/** What the command asks the BPF side for, besides where to attach. */
export interface ProbeWants {
  unit: Unit;
  /** The argument whose histogram --size keeps (1-based), 0 for none. */
  sizeArg: number;
  stacks: boolean;
  /** --unwind dwarf (with stacks): a stack copy per call in the `calls` ring buffer, not stack ids. */
  copies?: boolean;
}

/** What one run traces, loaded and attached. */
export interface Probed {
  obj: BpfObject<typeof SKELETON>;
  funcs: TracedFunction[];
  /** The file holding the functions; none for a kernel function. */
  binary?: BinaryFile;
  /** The attach path that loaded (fentry or kprobe for a kernel function). */
  path: string;
}

/** The smallest ring buffer the kernel takes (a page): `calls` without --unwind dwarf. */
const UNUSED_RING = 4096;

/**
 * Before load: the maps sized to `n` functions (per-CPU arrays cost ncpu x
 * entries), the stack table only with --stack by stack ids (a hash is
 * preallocated), the calls ring buffer only with --unwind dwarf.
 */
export function sizeMaps(obj: BpfObject<typeof SKELETON>, n: number, wants: Pick<ProbeWants, 'stacks' | 'copies'>): void {
  const ids = wants.stacks && !wants.copies;
  obj.map('stats').maxEntries = n;
  obj.map('max_ns').maxEntries = n;
  obj.map('hists').maxEntries = n * ENUMS.STRLAT_HIST_KINDS;
  obj.map('stack_lat').maxEntries = ids ? DEFINES.STRLAT_STACK_KEYS : 1;
  if (!ids) StackMap.resize(obj, 1);
  if (!(wants.stacks && wants.copies)) obj.map('calls').maxEntries = UNUSED_RING;
}

function rodataOf(wants: ProbeWants) {
  return { unit_div: wants.unit.div, size_arg: wants.sizeArg, want_stacks: wants.stacks, want_copies: Boolean(wants.copies) };
}

// ---- a kernel function (--kfunc) ---------------------------------------------

/** Where a kernel with kprobes lists their perf event type. */
const KPROBE_PMU = '/sys/bus/event_source/devices/kprobe';

/** Kernel function names: what the kernel's symbols can be (module suffixes and .cold parts are not). */
const KFUNC_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;

export function kernelPaths(func: string): AttachPath<typeof SKELETON>[] {
  return [
    {
      name: 'fentry',
      programs: ['strlat_fentry', 'strlat_fexit'],
      attachTargets: { strlat_fentry: func, strlat_fexit: func },
      note: `fentry/fexit on ${func}: BPF trampolines, the cheapest kernel hook`,
    },
    {
      name: 'kprobe',
      programs: ['strlat_kprobe', 'strlat_kretprobe'],
      attach: (obj) => [obj.program('strlat_kprobe').attachKprobe(func), obj.program('strlat_kretprobe').attachKprobe(func, true)],
      note: `kprobe + kretprobe on ${func} (no fentry here)`,
    },
  ];
}

/** Text functions of /proc/kallsyms named `func` (modules' too). */
function inKallsyms(func: string): boolean | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/kallsyms', 'utf8');
  } catch {
    return undefined; // no kallsyms: let the attach decide
  }
  const re = new RegExp(`^\\S+ [TtWw] ${func.replace(/\./g, '\\.')}(\\s|$)`, 'm');
  return re.test(text);
}

/** Refuse a name that is no kernel function before loading anything. */
export function checkKernelFunction(func: string): void {
  if (!KFUNC_NAME.test(func)) {
    throw new UsageError(`--kfunc: '${func}' is not a kernel function name`, 'give one name as /proc/kallsyms lists it, e.g. --kfunc vfs_read');
  }
  if (inKallsyms(func) === false && !kernelBtfHas(func, 'func')) {
    throw new RbtraceError(`no kernel function '${func}' (not in /proc/kallsyms nor the kernel's BTF)`,
      { hint: `list them with grep -w T /proc/kallsyms; syscalls are ${hostArch().syscallPrefix}NAME on ${hostArch().machine}` });
  }
}

/**
 * Load through the kernel paths, and when none works say so in one line,
 * naming both hooks and why each failed (as on a kernel without kprobes
 * whose BPF trampolines are refused).
 */
export function loadKernelPaths(func: string, load: (paths: AttachPath<typeof SKELETON>[]) => Loaded<typeof SKELETON>): Loaded<typeof SKELETON> {
  try {
    return load(kernelPaths(func));
  } catch (err) {
    if (!(err instanceof RbtraceError) || !/^no attach path works/.test(err.message)) throw err;
    // src/core/bpf/paths.ts: "no attach path works on this kernel: PATH: WHY; PATH: WHY".
    const why = err.message.replace(/^no attach path works on this kernel: /, '')
      .replace(/kprobe: .*ENOENT[^;]*/, (m) => (existsSync(KPROBE_PMU) ? m : 'kprobe: this kernel has no kprobes (CONFIG_KPROBES is off)'));
    // The one line says it all; -v has libbpf's log.
    throw new RbtraceError(`cannot time kernel function ${func}: this kernel offers neither fentry nor kprobes for it (${why})`,
      { hint: 'a kernel with CONFIG_KPROBES or BPF trampolines (fentry, 5.5+) can; rbtrace doctor lists what this one offers' });
  }
}

/** --kfunc: check the name, then load the best kernel path that works. */
export function probeKernel(ctx: ToolContext, func: string, wants: ProbeWants): Probed {
  checkKernelFunction(func);
  const { obj, path } = loadKernelPaths(func, (paths) => ctx.load({
    skeleton: SKELETON, paths,
    rodata: rodataOf(wants),
    configure: (o) => sizeMaps(o, 1, wants),
  }));
  return { obj, funcs: [{ name: func, label: func }], path: path.name };
}

// ---- user-space functions ------------------------------------------------------

/** The function as the title names it: the raw symbol when demangled, and how many addresses share the name. */
export function describeFunctions(query: string, funcs: ResolvedFunction[]): string {
  const f = funcs[0];
  const shown = f.demangled && f.demangled !== query ? `${query} (${f.symbol})` : query;
  return funcs.length > 1 ? `${shown} and ${funcs.length - 1} more of that name` : shown;
}

/** A kernel without BPF cookies for uprobes (before 5.15) refuses the multi-function programs: say so. */
function cookiesNeeded<T>(several: boolean, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (several && err instanceof RbtraceError && /get_attach_cookie|unknown#174/.test(err.details ?? '')) {
      throw new RbtraceError('several functions at once need BPF cookies (Linux 5.15+), which this kernel lacks',
        { hint: 'time one function per run', details: err.details });
    }
    throw err;
  }
}

/**
 * Which user-space functions: `query` (a name, or with `several` a list or
 * pattern) in --lib; else, when `named` (the user gave --func), the target's
 * executable if it has them; else the target's libruby.
 */
export interface UserQuery {
  query: string;
  several: boolean;
  lib?: string;
  named?: boolean;
  /** --all-processes (follow-uprobes.ts). */
  allProcesses?: boolean;
}

/** The binary `query` is looked for in, and why that one (for -v). */
function binaryFor(ctx: ToolContext, { several, lib, named }: UserQuery, resolve: (b: BinaryFile) => NamedFunction[]): { binary: BinaryFile; why: string } {
  if (lib !== undefined) return { binary: findLibrary(lib, ctx.target.pid), why: `the library given (${lib})` };
  const exe = named ? executableDefining(ctx.target, resolve) : undefined;
  if (exe) return { binary: exe, why: `the ${ctx.target.pid ? 'process\'s' : 'command\'s'} executable defines ${several ? 'them' : 'it'}` };
  const binary = findRubyBinary({ pid: ctx.target.pid, command: ctx.target.command });
  return { binary, why: named && (ctx.target.pid || ctx.target.command) ? 'not in the executable: the target\'s Ruby' : 'the target\'s Ruby' };
}

/** Resolve the functions in their binary, load, and put a uprobe and a uretprobe on each address. */
export function probeUser(ctx: ToolContext, user: UserQuery, wants: ProbeWants): Probed {
  const { query, several } = user;
  const resolve = (b: BinaryFile): NamedFunction[] => (several
    ? resolveFunctions(b, splitFunctionList(query), MAX_FUNCS)
    : [{ name: query, funcs: resolveFunction(b, query) }]);
  const { binary, why } = binaryFor(ctx, user, resolve);
  ctx.log.verbose(`looking for ${query} in ${binary}: ${why}`);
  const named = resolve(binary);
  refuseGoUretprobes(binary, 'strlat');
  for (const n of named) ctx.log.verbose(`${n.name}: ${n.funcs.map((f) => `${f.symbol} at file offset 0x${f.offset.toString(16)}`).join(', ')} in ${binary}`);

  // One function: programs without cookies (5.10 loads them). Several: the
  // cookie of each link says which function (5.15+).
  const [entry, ret]: ProgramName[] = several ? ['strlat_entry_multi', 'strlat_return_multi'] : ['strlat_entry', 'strlat_return'];
  const { obj } = cookiesNeeded(several, () => loadUserProbes(ctx, {
    skeleton: SKELETON,
    pathName: 'uprobe',
    note: `uprobe + uretprobe on ${named.length > 1 ? `each of ${named.length} functions (BPF cookies say which)` : 'the function'}; user-space code has no fentry/kprobe/tracepoint`,
    programs: [entry, ret],
    rodata: rodataOf(wants),
    configure: (o) => sizeMaps(o, named.length, wants),
    // -p and -- CMD: the kernel puts breakpoints in the target's processes
    // only (loadUserProbes); no target: every process mapping the binary.
    attachPerProcess: !user.allProcesses,
    attach: (o, pid) => named.flatMap((n, i) => n.funcs.flatMap((f) => {
      const at = { binary, offset: f.offset, pid, ...(several ? { cookie: BigInt(i) } : {}) };
      return [o.program(entry).attachUprobe(at), o.program(ret).attachUprobe({ ...at, retprobe: true })];
    })),
  }));
  return { obj, funcs: named.map((n) => ({ name: n.name, label: describeFunctions(n.name, n.funcs) })), binary, path: 'uprobe' };
}
