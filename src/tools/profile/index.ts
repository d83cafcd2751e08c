// profile: CPU sampling with user and kernel stacks (bcc's profile, perf
// record -g), output as a top-N table, folded stacks (--folded) or an
// interactive SVG flame graph (--svg FILE) drawn by rbtrace itself.
//
// src/bpf/profile.bpf.c counts (process, stacks, comm) at each tick
// (probe.ts loads it); collect.ts reads the counts and names the stacks
// (src/core/stacks/) at the end; views.ts prints them, flamegraph.ts draws them.
// --unwind dwarf loads src/bpf/rbstack.bpf.c instead: dwarf-collect.ts
// unwinds each sample's stack copy (src/core/unwind/) and names its Ruby
// frames, into the same Profile.
import { Option, type Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { RbtraceError, UsageError } from '../../core/errors.js';
import { checkOutputPath, writeOutputFile } from '../../core/output/file.js';
import { integerParser } from '../../core/parsers.js';
import { onlineCpus } from '../../core/bpf/perf.js';
import { escapeForTerminal, plural } from '../../core/output/format.js';
import { readComm } from '../../core/linux/process.js';
import { SKELETON } from '../../generated/profile.js';
import { SKELETON as RBSTACK } from '../../generated/rbstack.js';
import { DEFAULT_HZ, dwarfLoadSpec, dwarfPollMs, loadSpec, pathsFor } from './probe.js';
import { ProfileCollector, type Profile } from './collect.js';
import { DwarfCollector } from './dwarf-collect.js';
import { dwarfNote, flameStacks, foldedLines, profileFigures, profileNotes, profileRecord, writeFunctions, writeTable } from './views.js';
import type { ToolContext } from '../../core/tool.js';
import type { Symbolizer } from '../../core/stacks/index.js';
import { PROFILE } from '../common/figures.js';
import { FLAME_GRAPH, flameGraphSvg } from '../../core/stacks/flamegraph.js';
import { autoUnwind, requireDwarfArch, unwindOption, type UnwindMode } from '../../core/unwind/option.js';

export interface ProfileOptions {
  frequency: number;
  top: number;
  folded?: boolean;
  functions?: boolean;
  svg?: string;
  userOnly?: boolean;
  kernelOnly?: boolean;
  unwind: UnwindMode | 'auto';
}

const parseHz = integerParser('-F', { min: 1, max: 10000, what: 'a sampling frequency in Hz', example: '99' });
const parseTop = integerParser('--top', { min: 1, max: 1_000_000, what: 'a number of stacks', example: '20' });

export default defineTool<ProfileOptions>({
  name: 'profile',
  summary: 'CPU profile by sampling user and kernel stacks: top stacks, folded stacks, SVG flame graph',
  honours: ['pid', 'command', 'duration'],
  whyNot: { interval: 'a profile is one report, at the end' },
  textOnly: ['top', 'functions'],
  help: `Examples:
  rbtrace profile -p 1234 -d 10                 top stacks of a running process over 10 s
  rbtrace profile --svg cpu.svg -- make -j2     a flame graph of a build (open cpu.svg in a browser)
  rbtrace profile -F 99 --folded -d 5 > out.folded    folded stacks: flamegraph.pl, speedscope, inferno
  rbtrace profile -d 5                          every process on every CPU
  rbtrace profile --svg ruby.svg -- ruby app.rb  Ruby methods (file:line) over native code without frame pointers
                                                (a ruby target gets --unwind dwarf; give it for one run through a wrapper)`,
  options(cmd: Command) {
    cmd
      .addOption(new Option('-F, --frequency <hz>', 'samples a second, per CPU').argParser(parseHz).default(DEFAULT_HZ))
      .addOption(new Option('--top <n>', 'stacks shown in the table').argParser(parseTop).default(10))
      .option('-f, --folded', 'print folded stacks ("comm;outer;...;inner count"), not the table')
      .option('--functions', 'print one row per function, its self and total share (perf report --children), not the top stacks')
      .addOption(new Option('--svg <file>', 'also write an interactive SVG flame graph to FILE (an existing FILE must be an SVG)').argParser((t) => checkOutputPath(t, FLAME_GRAPH)))
      .option('-U, --user-only', 'user stacks only (bcc profile -U)')
      .option('-K, --kernel-only', 'kernel stacks only (bcc profile -K)')
      .addOption(unwindOption('Ruby frames', { auto: true }));
  },
  kernels: { best: '5.10 perf_event' },
  figures: PROFILE,
  probe: () => {
    // Frame pointers decide whether profile runs; --unwind dwarf is another object a kernel may refuse.
    const main = probePaths(SKELETON, pathsFor(DEFAULT_HZ));
    try {
      return `${main}; with --unwind dwarf: ${probePaths(RBSTACK, dwarfLoadSpec(DEFAULT_HZ).paths)}`;
    } catch (err) {
      return `${main}; --unwind dwarf unavailable: ${(err as Error).message}`;
    }
  },
  run(ctx, opts) {
    if (opts.userOnly && opts.kernelOnly) throw new UsageError('--user-only and --kernel-only cannot be used together', 'pick one, or neither for both stacks');
    if (opts.folded && ctx.out.json) throw new UsageError('--folded and --json cannot be used together', 'pick one output');
    if (opts.functions && opts.folded) throw new UsageError('--functions and --folded cannot be used together', 'pick one output');
    if (opts.unwind === 'dwarf' && opts.kernelOnly) throw new UsageError('--unwind dwarf walks user stacks: --kernel-only takes none', 'drop --unwind dwarf for kernel stacks only');
    const hz = opts.frequency;
    const collector = startCollector(ctx, hz, opts);
    const started = Date.now();
    const cpus = onlineCpus().length;
    const what = ctx.target.pid ? `pid ${ctx.target.pid}${readComm(ctx.target.pid) ? ` (${readComm(ctx.target.pid)})` : ''}`
      : ctx.target.command ? 'the command and its children' : 'all processes';
    {
      ctx.banner(`Sampling ${escapeForTerminal(what)} at ${hz} Hz on ${cpus} CPUs, ${opts.userOnly ? 'user' : opts.kernelOnly ? 'kernel' : 'user + kernel'} stacks... ${ctx.opts.duration ? '' : 'Hit Ctrl-C to end.'}`.trimEnd());
    }

    ctx.session.onFinish(() => {
      const seconds = (Date.now() - started) / 1000;
      const profile = collector.read();
      if (collector instanceof DwarfCollector) ctx.log.verbose(dwarfNote(collector.stats));
      ctx.report(profileFigures(profile));
      if (opts.svg !== undefined) {
        const svg = flameGraphSvg(flameStacks(profile), {
          title: `rbtrace profile: ${what}`,
          subtitle: `${plural(profile.samples, 'sample')} at ${hz} Hz over ${seconds.toFixed(1)} s, ${new Date().toISOString().slice(0, 19)}Z`,
        });
        writeOutputFile(opts.svg, svg, FLAME_GRAPH);
      }
      if (ctx.out.json) {
        ctx.out.record(profileRecord(profile, { time: new Date(), hz, cpus, seconds }));
        return;
      }
      if (opts.folded) for (const line of foldedLines(profile)) ctx.out.line(line);
      else if (opts.functions) writeFunctions(ctx.out.line.bind(ctx.out), ctx.color, profile, opts.top);
      else writeTable(ctx.out.line.bind(ctx.out), ctx.color, profile, opts.top);
      const sym = collector.sym;
      for (const n of profileNotes(profile, { kernelHidden: !opts.userOnly && sym.kernelSymbols.unavailable, svg: opts.svg })) ctx.log.warn(n);
      for (const [file, why] of sym.failures) ctx.log.verbose(escapeForTerminal(`no symbols from ${file}: ${why}`));
    });
  },
});

interface Collector {
  readonly sym: Symbolizer;
  read(): Profile;
}

function startFramePointers(ctx: ToolContext, hz: number, opts: ProfileOptions): Collector {
  const { obj } = ctx.load(loadSpec(hz, opts));
  const collector = new ProfileCollector(obj, Boolean(opts.kernelOnly));
  ctx.ringBuffer(obj, 'new_pids', (rec) => collector.onNewPid(rec));
  return collector;
}

/**
 * The unwinder asked for; for auto, the one the target wants (autoUnwind).
 * Auto's dwarf refused by the kernel costs the Ruby frames, not the run.
 */
function startCollector(ctx: ToolContext, hz: number, opts: ProfileOptions): Collector {
  if (opts.unwind === 'dwarf') return startDwarf(ctx, hz, Boolean(opts.userOnly));
  if (opts.unwind === 'fp' || opts.kernelOnly) return startFramePointers(ctx, hz, opts);
  const auto = autoUnwind(ctx.target);
  ctx.log.verbose(`unwind: ${auto.mode} (auto: ${auto.why})`);
  if (auto.mode === 'fp') return startFramePointers(ctx, hz, opts);
  try {
    return startDwarf(ctx, hz, Boolean(opts.userOnly));
  } catch (err) {
    if (!(err instanceof RbtraceError)) throw err;
    ctx.log.warn(`the dwarf unwinder cannot run here (${err.message}): frame pointers instead, without Ruby frames (--unwind fp chooses them up front)`);
    return startFramePointers(ctx, hz, opts);
  }
}

/** --unwind dwarf: rbstack.bpf.c; a kernel that refuses it is said in one line (paths.ts), as for any tool. */
function startDwarf(ctx: ToolContext, hz: number, userOnly: boolean): DwarfCollector {
  requireDwarfArch();
  // -p: the process is looked at (a ruby's VM put in the BPF map) once the
  // object is loaded and before sampling starts, so its first samples have
  // Ruby frames too: under emulation finding the VM took a second, whose
  // samples were native frames only.
  // (ctx.load either runs the attach step, which makes it, or throws.)
  let collector!: DwarfCollector;
  const { obj } = ctx.load(dwarfLoadSpec(hz, (loaded) => {
    collector = new DwarfCollector(loaded, { warn: (m) => ctx.log.warn(m), userOnly });
    if (ctx.target.pid) collector.watch(ctx.target.pid);
  }));
  const pollMs = dwarfPollMs(hz, onlineCpus().length);
  ctx.ringBuffer(obj, 'new_pids', (rec) => collector.onNewPid(rec)).pollMs = pollMs;
  ctx.ringBuffer(obj, 'samples', (rec) => collector.onSample(rec)).pollMs = pollMs;
  return collector;
}
