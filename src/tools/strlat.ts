// strlat: latency histograms of functions. User-space ones through a uprobe
// and a uretprobe (src/bpf/strlat.bpf.c): by default Ruby's rb_str_new in
// the libruby the target uses; with --func/--lib any function (a
// funclatency), named raw or demangled (Rust, C++), several at once (a list
// or a shell pattern), each with its own histogram. A kernel function with
// --kfunc: fentry/fexit, else kprobe/kretprobe (src/tools/strlat/kernel.ts).
//
// The BPF side keeps cumulative per-CPU stats and histograms per function;
// each report is the difference from the previous snapshot, so nothing is
// lost between reading and resetting (src/tools/strlat/collect.ts).
import { Option, type Command } from 'commander';
import { defineTool, type ToolContext } from '../core/tool.js';
import { RbtraceError, UsageError } from '../core/errors.js';
import { integerParser } from '../core/parsers.js';
import { findLibrary } from '../core/process.js';
import {
  findRubyBinary, isFunctionPattern, loadUserProbes, probeUserProbes, refuseGoUretprobes, resolveFunction, resolveFunctions,
  splitFunctionList, type NamedFunction, type ResolvedFunction,
} from '../core/uprobes.js';
import { term } from '../core/output/format.js';
import { STRLAT, STRLAT_FUNCTIONS } from './common/figures.js';
import { StrlatCollector, printReports, sizeMaps, type TracedFunction, type Unit } from './strlat/collect.js';
import { checkKernelFunction, loadKernelPaths } from './strlat/kernel.js';
import { StackCollector, sizeStackMaps } from './strlat/stacks.js';
import type { BpfObject } from '../core/object.js';
import { DEFINES, SKELETON, type ProgramName } from '../generated/strlat.js';

export type { StrlatReport } from './strlat/collect.js';

export interface StrlatOptions {
  func?: string;
  lib?: string;
  kfunc?: string;
  microseconds?: boolean;
  milliseconds?: boolean;
  size?: boolean;
  arg?: number;
  stack?: boolean;
}

const DEFAULT_FUNC = 'rb_str_new';
/** rb_str_new(const char *ptr, long len): the length is the 2nd argument. */
const DEFAULT_SIZE_ARG = 2;
/** Functions timed at once: each is two probes (and a uprobe hit costs µs). */
export const MAX_FUNCS = DEFINES.STRLAT_MAX_FUNCS;

function unitOf(opts: StrlatOptions): Unit {
  if (opts.microseconds && opts.milliseconds) throw new UsageError('-u and -m cannot be used together', 'pick one unit');
  if (opts.milliseconds) return { name: 'msecs', div: 1_000_000 };
  if (opts.microseconds) return { name: 'usecs', div: 1000 };
  return { name: 'nsecs', div: 1 };
}

/** --arg: the position of a register argument the BPF side reads (PT_REGS_PARM1..5). */
const parseArgIndex = integerParser('--arg', { min: 1, max: 5, what: 'an argument position', example: '2' });

/** --size: which argument (1-based), 0 without --size. */
function sizeArgOf(opts: StrlatOptions): number {
  return opts.size ? opts.arg ?? ((opts.func ?? DEFAULT_FUNC) === DEFAULT_FUNC ? DEFAULT_SIZE_ARG : 1) : 0;
}

/** --func a,b or a pattern: one report per function, as rows (in --json, one object each). */
function severalFunctions(opts: StrlatOptions): boolean {
  if (opts.kfunc !== undefined || opts.func === undefined) return false;
  const list = splitFunctionList(opts.func);
  return list.length > 1 || list.some(isFunctionPattern);
}

export function describeFunctions(query: string, funcs: ResolvedFunction[]): string {
  const f = funcs[0];
  const shown = f.demangled && f.demangled !== query ? `${query} (${f.symbol})` : query;
  return funcs.length > 1 ? `${shown} and ${funcs.length - 1} more of that name` : shown;
}

/** --stack: the slowest stacks shown per function and report. */
const STACK_TOP = 10;

/** What one run traces, loaded and attached. */
interface Traced {
  obj: BpfObject<typeof SKELETON>;
  collector: StrlatCollector;
  funcs: TracedFunction[];
  title: string;
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

function traceKernel(ctx: ToolContext, opts: StrlatOptions, unit: Unit): Traced {
  const func = opts.kfunc!;
  for (const [given, flag] of [[opts.func, '--func'], [opts.lib, '--lib'], [opts.size, '--size']] as const) {
    if (given !== undefined) throw new UsageError(`--kfunc and ${flag} cannot be used together`, `${flag} is for user-space functions`);
  }
  checkKernelFunction(func);
  const { obj, path } = loadKernelPaths(func, (paths) => ctx.load({
    skeleton: SKELETON, paths,
    rodata: { unit_div: unit.div, size_arg: 0, want_stacks: Boolean(opts.stack) },
    configure: (o) => {
      sizeMaps(o, 1);
      sizeStackMaps(o, Boolean(opts.stack));
    },
  }));
  const funcs = [{ name: func, label: func }];
  return {
    obj,
    collector: new StrlatCollector(obj, funcs, '[kernel]', 0),
    funcs,
    title: term`Tracing kernel function ${func} (${path.name})${ctx.target.pid ? ` (pid ${ctx.target.pid})` : ''}...`,
  };
}

function traceUser(ctx: ToolContext, opts: StrlatOptions, unit: Unit): Traced {
  const query = opts.func ?? DEFAULT_FUNC;
  const several = severalFunctions(opts);
  const sizeArg = sizeArgOf(opts);
  const binary = opts.lib !== undefined
    ? findLibrary(opts.lib, ctx.target.pid)
    : findRubyBinary({ pid: ctx.target.pid, command: ctx.target.command });
  const named: NamedFunction[] = several
    ? resolveFunctions(binary, splitFunctionList(query), MAX_FUNCS)
    : [{ name: query, funcs: resolveFunction(binary, query) }];
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
    rodata: { unit_div: unit.div, size_arg: sizeArg, want_stacks: Boolean(opts.stack) },
    configure: (o) => {
      sizeMaps(o, named.length);
      sizeStackMaps(o, Boolean(opts.stack));
    },
    // -p: the kernel filters by pid (other processes never trap). -- CMD
    // and no target: every process mapping the binary; BPF filters.
    attach: (o) => named.flatMap((n, i) => n.funcs.flatMap((f) => {
      const at = { binary, offset: f.offset, pid: ctx.target.pid, ...(several ? { cookie: BigInt(i) } : {}) };
      return [o.program(entry).attachUprobe(at), o.program(ret).attachUprobe({ ...at, retprobe: true })];
    })),
  }));
  const funcs = named.map((n) => ({ name: n.name, label: describeFunctions(n.name, n.funcs) }));
  const shown = funcs.length > 1 ? `${funcs.length} functions (${query})` : funcs[0].label;
  return {
    obj,
    collector: new StrlatCollector(obj, funcs, String(binary), sizeArg),
    funcs,
    title: term`Tracing ${shown} in ${binary.name}${ctx.target.pid ? ` (pid ${ctx.target.pid})` : ''}...`,
  };
}

export default defineTool<StrlatOptions>({
  name: 'strlat',
  summary: 'latency histograms of user-space or kernel functions (default: Ruby rb_str_new)',
  textOnly: ['microseconds', 'milliseconds'],
  help: `Examples:
  rbtrace strlat -- ruby app.rb                 rb_str_new latency of one script
  rbtrace strlat -p 1234 -u -i 5                a running ruby, in µs, every 5 s
  rbtrace strlat --size -- ruby app.rb          also the lengths of the new strings
  rbtrace strlat --lib c --func malloc -p 1234  any function: a funclatency
  rbtrace strlat --lib c --func malloc,free,calloc -p 1234     several, one histogram each
  rbtrace strlat --func 'rb_str_*' -- ruby app.rb              a pattern (at most ${MAX_FUNCS} functions)
  rbtrace strlat --lib ./target/release/app --func 'app::parse'   demangled Rust/C++ names
  rbtrace strlat --kfunc vfs_read -- cat /etc/passwd           a kernel function (fentry, else kprobe)
  rbtrace strlat --stack --lib c --func fsync -p 1234           who makes the slow calls`,
  options(cmd: Command) {
    cmd
      .option('--func <symbols>', `function(s) to time: a name (raw or demangled), a list a,b, or a pattern such as 'rb_str_*' (default ${DEFAULT_FUNC})`)
      .option('--lib <path|name>', 'binary or library holding it: a path, or a name such as c or ruby (default: the target\'s libruby)')
      .option('--kfunc <name>', 'time a kernel function instead (fentry/fexit, else kprobe/kretprobe)')
      .option('-u, --microseconds', 'histogram in microseconds')
      .option('-m, --milliseconds', 'histogram in milliseconds')
      .option('--size', `also a histogram of a length argument (--arg; rb_str_new's is the ${DEFAULT_SIZE_ARG}nd)`)
      .addOption(new Option('--arg <n>', 'which argument --size reads (1-5)').argParser(parseArgIndex))
      .option('--stack', `also latency by calling stack: each function's ${STACK_TOP} slowest callers (by total time)`);
  },
  kernels: { best: '5.10 uprobe' },
  figures: (opts) => (severalFunctions(opts) ? STRLAT_FUNCTIONS() : STRLAT()),
  probe: () => {
    const binary = findRubyBinary({});
    const funcs = resolveFunction(binary, DEFAULT_FUNC);
    probeUserProbes(SKELETON, ['strlat_entry', 'strlat_return'], (o) => funcs.forEach((f) => {
      o.program('strlat_entry').attachUprobe({ binary, offset: f.offset, pid: process.pid });
      o.program('strlat_return').attachUprobe({ binary, offset: f.offset, pid: process.pid, retprobe: true });
    }), (o) => {
      sizeMaps(o, 1);
      sizeStackMaps(o, false);
    });
    return `uprobe (${binary}:${DEFAULT_FUNC})`;
  },
  run(ctx, opts) {
    const unit = unitOf(opts);
    if (opts.arg !== undefined && !opts.size) throw new UsageError('--arg is for --size', 'add --size, or drop --arg');
    const several = severalFunctions(opts);
    const { obj, collector, funcs, title } = opts.kfunc !== undefined ? traceKernel(ctx, opts, unit) : traceUser(ctx, opts, unit);
    const stacks = opts.stack ? new StackCollector(obj, ctx, STACK_TOP) : undefined;
    if (!ctx.out.json) ctx.out.line(`${title} ${ctx.opts.interval ? '' : 'Hit Ctrl-C to end.'}`.trimEnd());

    let stacksLost = 0;
    const report = (final: boolean) => {
      const reps = collector.take(stacks);
      const lost = stacks?.errors() ?? 0;
      if (lost > stacksLost) ctx.log.warn(`${lost - stacksLost} stacks could not be kept (the stack map is full); their calls are counted, not by stack`);
      stacksLost = Math.max(stacksLost, lost);
      ctx.report(several ? { functions: reps } : reps[0]);
      if (ctx.out.json) {
        for (const r of reps) ctx.out.record(r);
        return;
      }
      // nothing since the last interval
      if (final && ctx.opts.interval && reps.every((r) => r.count === 0 && !r.dropped)) return;
      if (ctx.opts.interval) ctx.out.line(ctx.color.bold(`\n[${new Date().toTimeString().slice(0, 8)}]`));
      else ctx.out.line();
      printReports(ctx, reps, funcs, unit, opts.kfunc === undefined ? sizeArgOf(opts) : 0);
    };

    ctx.session.onInterval(() => report(false));
    ctx.session.onFinish(() => report(true));
  },
});
