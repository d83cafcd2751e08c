// strlat: latency histograms of functions. User-space ones by default (Ruby's
// rb_str_new in the libruby the target uses; with --func/--lib any function,
// a funclatency, named raw or demangled, several at once, each with its own
// histogram), a kernel function with --kfunc. probe.ts attaches
// src/bpf/strlat.bpf.c; collect.ts reads its per-function figures at each
// report (-i) or at the end, and views.ts prints histograms and summaries.
import { Option, type Command } from 'commander';
import { ALL_PROCESSES_OPTION } from '../../core/bpf/follow-uprobes.js';
import { defineTool } from '../../core/tool.js';
import { UsageError } from '../../core/errors.js';
import { plural } from '../../core/output/format.js';
import { integerParser } from '../../core/parsers.js';
import { findRubyBinary, isFunctionPattern, probeUserProbes, resolveFunction, splitFunctionList, splitLibFunction } from '../../core/bpf/uprobes.js';
import { STRLAT, STRLAT_FUNCTIONS } from '../common/figures.js';
import { SKELETON } from '../../generated/strlat.js';
import { MAX_FUNCS, probeKernel, probeUser, sizeMaps, type Unit } from './probe.js';
import { StackCollector, StrlatCollector } from './collect.js';
import { CopyStackCollector } from './dwarf-collect.js';
import { requireDwarfArch, unwindOption, type UnwindMode } from '../../core/unwind/option.js';
import { dwarfNote, printReports, titleOf } from './views.js';

export type { StrlatReport } from './collect.js';
export { MAX_FUNCS };

export interface StrlatOptions {
  allProcesses?: boolean;
  func?: string;
  lib?: string;
  kfunc?: string;
  microseconds?: boolean;
  milliseconds?: boolean;
  size?: boolean;
  arg?: number;
  stack?: boolean;
  unwind: UnwindMode;
}

const DEFAULT_FUNC = 'rb_str_new';
/** rb_str_new(const char *ptr, long len): the length is the 2nd argument. */
const DEFAULT_SIZE_ARG = 2;

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

/** --func LIB:FUNC as --lib LIB --func FUNC (funclatency's form); both at once is an error. */
function withLibrary(opts: StrlatOptions): StrlatOptions {
  if (opts.func === undefined) return opts;
  const { lib, func } = splitLibFunction(opts.func);
  if (lib === undefined) return opts;
  if (opts.lib !== undefined) throw new UsageError(`--func ${opts.func} names a library and --lib gives one too`, `give it once: --func ${lib}:${func}, or --lib ${lib} --func ${func}`);
  return { ...opts, lib, func };
}

/** --func a,b or a pattern: one report per function, as rows (in --json, one object each). */
function severalFunctions(given: StrlatOptions): boolean {
  const opts = withLibrary(given);
  if (opts.kfunc !== undefined || opts.func === undefined) return false;
  const list = splitFunctionList(opts.func);
  return list.length > 1 || list.some(isFunctionPattern);
}

/** --kfunc refuses the options of user-space functions. */
function checkKernelOptions(opts: StrlatOptions): void {
  for (const [given, flag] of [[opts.func, '--func'], [opts.lib, '--lib'], [opts.size, '--size'], [opts.unwind === 'dwarf' ? true : undefined, '--unwind dwarf']] as const) {
    if (given !== undefined) throw new UsageError(`--kfunc and ${flag} cannot be used together`, `${flag} is for user-space functions`);
  }
}

/** --stack: the slowest stacks shown per function and report. */
const STACK_TOP = 10;

export default defineTool<StrlatOptions>({
  name: 'strlat',
  summary: 'latency histograms of user-space or kernel functions (default: Ruby rb_str_new)',
  textOnly: ['microseconds', 'milliseconds'],
  help: `Examples:
  rbtrace strlat -- ruby app.rb                 rb_str_new latency of one script
  rbtrace strlat -p 1234 -u -i 5                a running ruby, in µs, every 5 s
  rbtrace strlat --size -- ruby app.rb          also the lengths of the new strings
  rbtrace strlat --lib c --func malloc -p 1234  any function: a funclatency (or --func c:malloc)
  rbtrace strlat --func checksum -- ./app       a function of the program itself (else of its libruby)
  rbtrace strlat --lib c --func malloc,free,calloc -p 1234     several, one histogram each
  rbtrace strlat --func 'rb_str_*' -- ruby app.rb              a pattern (at most ${MAX_FUNCS} functions)
  rbtrace strlat --lib ./target/release/app --func 'app::parse'   demangled Rust/C++ names
  rbtrace strlat --kfunc vfs_read -- cat /etc/passwd           a kernel function (fentry, else kprobe)
  rbtrace strlat --stack --lib c --func fsync -p 1234           who makes the slow calls
  rbtrace strlat --stack --unwind dwarf --func c:write -- gzip -k big.log
                                                callers through code without frame pointers`,
  options(cmd: Command) {
    cmd
      .option('--func <symbols>', `function(s) to time: a name (raw or demangled), a list a,b, or a pattern such as 'rb_str_*', LIB:NAME as --lib LIB (default ${DEFAULT_FUNC})`)
      .option('--lib <path|name>', 'binary or library holding it: a path, or a name such as c or ruby (default: the target\'s executable if it has --func, else its libruby)')
      .option(...ALL_PROCESSES_OPTION)
      .option('--kfunc <name>', 'time a kernel function instead (fentry/fexit, else kprobe/kretprobe)')
      .option('-u, --microseconds', 'histogram in microseconds')
      .option('-m, --milliseconds', 'histogram in milliseconds')
      .option('--size', `also a histogram of a length argument (--arg; rb_str_new's is the ${DEFAULT_SIZE_ARG}nd)`)
      .addOption(new Option('--arg <n>', 'which argument --size reads (1-5)').argParser(parseArgIndex))
      .option('--stack', `also latency by calling stack: each function's ${STACK_TOP} slowest callers (by total time)`)
      .addOption(unwindOption('with --stack: up to 16 KiB of stack sent per call'));
  },
  kernels: { best: '5.10 uprobe' },
  figures: (opts) => (severalFunctions(opts) ? STRLAT_FUNCTIONS() : STRLAT()),
  probe: () => {
    const binary = findRubyBinary({});
    const funcs = resolveFunction(binary, DEFAULT_FUNC);
    probeUserProbes(SKELETON, ['strlat_entry', 'strlat_return'], (o) => funcs.forEach((f) => {
      o.program('strlat_entry').attachUprobe({ binary, offset: f.offset, pid: process.pid });
      o.program('strlat_return').attachUprobe({ binary, offset: f.offset, pid: process.pid, retprobe: true });
    }), (o) => sizeMaps(o, 1, { stacks: false }));
    return `uprobe (${binary}:${DEFAULT_FUNC})`;
  },
  run(ctx, given) {
    const opts = withLibrary(given);
    const unit = unitOf(opts);
    if (opts.arg !== undefined && !opts.size) throw new UsageError('--arg is for --size', 'add --size, or drop --arg');
    const several = severalFunctions(opts);
    const stack = Boolean(opts.stack);
    const copies = opts.unwind === 'dwarf';
    if (copies && !stack) throw new UsageError('--unwind is for --stack', 'add --stack, or drop --unwind');
    let probed;
    if (opts.kfunc !== undefined) {
      checkKernelOptions(opts);
      probed = probeKernel(ctx, opts.kfunc, { unit, sizeArg: 0, stacks: stack });
    } else {
      if (copies) requireDwarfArch();
      probed = probeUser(ctx, { query: opts.func ?? DEFAULT_FUNC, several, lib: opts.lib, named: opts.func !== undefined, allProcesses: Boolean(opts.allProcesses) }, { unit, sizeArg: sizeArgOf(opts), stacks: stack, copies });
    }
    const { obj, funcs } = probed;
    const sizeArg = probed.binary ? sizeArgOf(opts) : 0;
    const collector = new StrlatCollector(obj, funcs, probed.binary ? String(probed.binary) : '[kernel]', sizeArg);
    const stacks = !stack ? undefined : copies ? new CopyStackCollector(obj, ctx, STACK_TOP) : new StackCollector(obj, ctx, STACK_TOP);
    const title = titleOf(probed, opts.func ?? DEFAULT_FUNC, ctx.target.pid);
    ctx.banner(`${title} ${ctx.opts.interval ? '' : 'Hit Ctrl-C to end.'}`.trimEnd());

    let stacksLost = 0;
    const report = (final: boolean) => {
      const readings = collector.take(stacks);
      const reps = readings.map((r) => r.report);
      const lost = stacks?.errors() ?? 0;
      if (lost > stacksLost) ctx.log.warn(`${plural(lost - stacksLost, 'stack')} could not be kept (the stack map is full); their calls are counted, not by stack`);
      stacksLost = Math.max(stacksLost, lost);
      ctx.report(several ? { functions: reps } : reps[0]);
      if (final && stacks instanceof CopyStackCollector) ctx.log.verbose(dwarfNote(stacks.stats));
      if (ctx.out.json) {
        for (const r of reps) ctx.out.record(r);
        return;
      }
      // nothing since the last interval
      if (final && ctx.opts.interval && reps.every((r) => r.count === 0 && !r.dropped)) return;
      if (ctx.opts.interval) ctx.out.line(ctx.color.bold(`\n[${new Date().toTimeString().slice(0, 8)}]`));
      else ctx.out.line();
      printReports(ctx, readings, funcs, unit, sizeArg, opts.unwind);
    };

    ctx.session.onInterval(() => report(false));
    ctx.session.onFinish(() => report(true));
  },
});
