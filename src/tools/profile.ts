// profile: CPU sampling with user and kernel stacks (bcc's profile, perf
// record -g), output as a top-N table, folded stacks (--folded) or an
// interactive SVG flame graph (--svg FILE) drawn by rbtrace itself.
//
// BPF side: src/bpf/profile.bpf.c, on a software cpu-clock perf event per
// CPU (src/core/perf.ts); stacks through src/core/stacks/.
import { basename } from 'node:path';
import { Option, type Command } from 'commander';
import { defineTool } from '../core/tool.js';
import { probePaths } from '../core/paths.js';
import { UsageError } from '../core/errors.js';
import { checkOutputPath, writeOutputFile, type OutputKind } from '../core/output-file.js';
import { integerParser } from '../core/parsers.js';
import { attachCpuSampling, onlineCpus } from '../core/perf.js';
import { Symbolizer } from '../core/stacks/index.js';
import { escapeForTerminal, formatCount } from '../core/output/format.js';
import { readComm } from '../core/process.js';
import { readProfile, frameJson, type Profile } from './profile/report.js';
import { flameGraphSvg } from './profile/flamegraph.js';
import { ENUMS, SKELETON } from '../generated/profile.js';

export interface ProfileOptions {
  frequency: number;
  top: number;
  folded?: boolean;
  svg?: string;
  userOnly?: boolean;
  kernelOnly?: boolean;
}

export const DEFAULT_HZ = 49;

const parseHz = integerParser('-F', { min: 1, max: 10000, what: 'a sampling frequency in Hz', example: '99' });
const parseTop = integerParser('--top', { min: 1, max: 1_000_000, what: 'a number of stacks', example: '20' });

/** What --svg writes, and so the only kind of file it replaces. */
export const FLAME_GRAPH: OutputKind = {
  flag: '--svg',
  what: 'an SVG file',
  recognise: (head) => /^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?<svg[\s>]/.test(head),
};

export default defineTool<ProfileOptions>({
  name: 'profile',
  summary: 'CPU profile by sampling user and kernel stacks: top stacks, folded stacks, SVG flame graph',
  honours: ['pid', 'command', 'duration'],
  whyNot: { interval: 'a profile is one report, at the end' },
  textOnly: ['top'],
  help: `Examples:
  rbtrace profile -p 1234 -d 10                 top stacks of a running process over 10 s
  rbtrace profile --svg cpu.svg -- make -j2     a flame graph of a build (open cpu.svg in a browser)
  rbtrace profile -F 99 --folded -d 5 > out.folded    folded stacks: flamegraph.pl, speedscope, inferno
  rbtrace profile -d 5                          every process on every CPU`,
  options(cmd: Command) {
    cmd
      .addOption(new Option('-F, --frequency <hz>', 'samples a second, per CPU').argParser(parseHz).default(DEFAULT_HZ))
      .addOption(new Option('--top <n>', 'stacks shown in the table').argParser(parseTop).default(10))
      .option('--folded', 'print folded stacks ("comm;outer;...;inner count"), not the table')
      .addOption(new Option('--svg <file>', 'also write an interactive SVG flame graph to FILE (an existing FILE must be an SVG)').argParser((t) => checkOutputPath(t, FLAME_GRAPH)))
      .option('--user-only', 'user stacks only')
      .option('--kernel-only', 'kernel stacks only');
  },
  kernels: { best: '5.10 perf_event' },
  probe: () => probePaths(SKELETON, [{ name: 'perf_event', programs: ['profile_sample'], attach: (o) => attachCpuSampling(o, 'profile_sample', DEFAULT_HZ) }]),
  run(ctx, opts) {
    if (opts.userOnly && opts.kernelOnly) throw new UsageError('--user-only and --kernel-only cannot be used together', 'pick one, or neither for both stacks');
    if (opts.folded && ctx.out.json) throw new UsageError('--folded and --json cannot be used together', 'pick one output');
    const hz = opts.frequency;
    const stacks = opts.userOnly ? ENUMS.PROFILE_USER_ONLY : opts.kernelOnly ? ENUMS.PROFILE_KERNEL_ONLY : ENUMS.PROFILE_BOTH;
    const { obj } = ctx.load({
      skeleton: SKELETON,
      rodata: { stacks },
      paths: [{
        name: 'perf_event',
        programs: ['profile_sample'],
        note: 'a software cpu-clock perf event per CPU; the process filter is in BPF',
        attach: (o) => attachCpuSampling(o, 'profile_sample', hz),
      }],
    });
    const sym = new Symbolizer();
    // A process's first sample: its mappings now, while it is alive.
    ctx.ringBuffer(obj, 'new_pids', (rec) => sym.notePid(rec.getUint32(0, true)));
    const started = Date.now();
    const cpus = onlineCpus().length;
    const what = ctx.target.pid ? `pid ${ctx.target.pid}${readComm(ctx.target.pid) ? ` (${readComm(ctx.target.pid)})` : ''}`
      : ctx.target.command ? 'the command and its children' : 'all processes';
    if (!ctx.out.json && !opts.folded) {
      ctx.out.line(`Sampling ${escapeForTerminal(what)} at ${hz} Hz on ${cpus} CPUs, ${opts.userOnly ? 'user' : opts.kernelOnly ? 'kernel' : 'user + kernel'} stacks... ${ctx.opts.duration ? '' : 'Hit Ctrl-C to end.'}`.trimEnd());
    }

    ctx.session.onFinish(() => {
      const seconds = (Date.now() - started) / 1000;
      const profile = readProfile(obj, sym, Boolean(opts.kernelOnly));
      ctx.report({ samples: profile.samples });
      if (opts.svg !== undefined) {
        const svg = flameGraphSvg(profile.stacks.map((s) => ({ frames: s.folded, count: s.count })), {
          title: `rbtrace profile: ${what}`,
          subtitle: `${profile.samples} samples at ${hz} Hz over ${seconds.toFixed(1)} s, ${new Date().toISOString().slice(0, 19)}Z`,
        });
        writeOutputFile(opts.svg, svg, FLAME_GRAPH);
      }
      if (ctx.out.json) {
        ctx.out.record({
          time: new Date().toISOString(), frequency_hz: hz, cpus, seconds: Number(seconds.toFixed(3)), samples: profile.samples,
          stack_errors: profile.stackErrors, dropped: profile.dropped,
          stacks: profile.stacks.map((s) => ({ comm: s.comm, pids: s.pids, count: s.count, truncated: s.truncated, frames: s.frames.map(frameJson) })),
        });
        return;
      }
      if (opts.folded) {
        for (const line of profile.stacks.map((s) => `${s.folded.join(';')} ${s.count}`).sort()) ctx.out.line(escapeForTerminal(line));
      } else {
        printTable(ctx.out.line.bind(ctx.out), ctx.color, profile, opts.top);
      }
      const notes: string[] = [];
      if (profile.stackErrors) notes.push(`${profile.stackErrors} stacks not captured (stack map full or hash collisions)`);
      if (profile.dropped) notes.push(`${profile.dropped} samples not counted (more than the distinct stacks rbtrace keeps)`);
      const kernelHidden = !opts.userOnly && sym.kernelSymbols.unavailable;
      if (kernelHidden) notes.push(`kernel frames unnamed: ${kernelHidden}`);
      if (opts.svg !== undefined) notes.push(`flame graph written to ${opts.svg}`);
      for (const n of notes) ctx.log.warn(escapeForTerminal(n));
      for (const [file, why] of sym.failures) ctx.log.verbose(escapeForTerminal(`no symbols from ${file}: ${why}`));
    });
  },
});

function printTable(line: (s?: string) => void, c: { bold(s: string): string; dim(s: string): string }, p: Profile, top: number): void {
  line();
  if (p.samples === 0) {
    line('No samples (the target used no CPU while sampled).');
    return;
  }
  const shown = p.stacks.slice(0, top);
  line(`${formatCount(p.samples)} samples in ${formatCount(p.stacks.length)} distinct stacks; the top ${shown.length}, innermost frame first:`);
  for (const s of shown) {
    line();
    const pids = s.pids.length === 1 ? `pid ${s.pids[0]}` : `${s.pids.length} processes`;
    line(c.bold(`${formatCount(s.count)} samples (${((100 * s.count) / p.samples).toFixed(1)}%)  ${escapeForTerminal(s.comm)} [${pids}]`));
    for (const f of s.frames) {
      const where = f.kernel ? '[k]' : f.module ? basename(f.module) : '';
      line(`    ${escapeForTerminal(f.name)}${where ? c.dim(`  ${escapeForTerminal(where)}`) : ''}`);
    }
    if (s.truncated) line(c.dim('    ... (probably cut short: code without frame pointers)'));
  }
}
