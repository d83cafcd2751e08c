// offcputime: where threads block, and for how long (bcc's offcputime): the
// time between leaving the CPU blocked and being switched in again, summed
// by user + kernel stack, as a table of the top stacks, folded lines in
// microseconds (--folded, bcc's -f) or an SVG flame graph (--svg). The
// kernel side (src/bpf/offcputime.bpf.c, loaded by probe.ts) sums; collect.ts
// reads and symbolizes once at the end (src/core/stacks); views.ts prints.
import { Option, type Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { UsageError } from '../../core/errors.js';
import { checkOutputPath, writeOutputFile } from '../../core/output/file.js';
import { integerParser } from '../../core/parsers.js';
import { Symbolizer, stackErrorsNote } from '../../core/stacks/index.js';
import { escapeForTerminal } from '../../core/output/format.js';
import { FLAME_GRAPH, flameGraphSvg } from '../../core/stacks/flamegraph.js';
import { OFFCPUTIME } from '../common/figures.js';
import { SKELETON } from '../../generated/offcputime.js';
import { loadSpec, PATHS } from './probe.js';
import { readOffcpu } from './collect.js';
import { foldedText, record, tableText } from './views.js';

export interface OffcputimeOptions {
  folded?: boolean;
  svg?: string;
  minBlock: number;   // -m, us
  maxBlock?: number;  // -M, us
  state?: boolean;    // -s
  userOnly?: boolean;
  kernelOnly?: boolean;
  top: number;
}

const parseUs = (flag: string) => integerParser(flag, { min: 0, max: 1e12, what: 'microseconds', example: '1000' });

export default defineTool<OffcputimeOptions>({
  name: 'offcputime',
  summary: 'time threads spend blocked, by user + kernel stack: top stacks, folded stacks, SVG flame graph',
  honours: ['pid', 'command', 'duration'],
  whyNot: { interval: 'the stacks are read and symbolized once, at the end' },
  textOnly: ['top'],
  help: `Examples:
  rbtrace offcputime -p 1234 -d 10              where a process blocks, over 10 s
  rbtrace offcputime --folded -d 5 > off.folded  bcc offcputime -f's lines (us): flamegraph.pl, speedscope
  rbtrace offcputime --svg off.svg -- make -j2   an off-CPU flame graph of a build
  rbtrace offcputime -s -m 10000 -d 5           blocks of 10 ms or more, sleeping vs uninterruptible`,
  options(cmd: Command) {
    cmd
      .option('--folded', 'print folded stacks ("comm;outer;...;inner microseconds"), not the table')
      .addOption(new Option('--svg <file>', 'also write an SVG flame graph of blocked time to FILE').argParser((t) => checkOutputPath(t, FLAME_GRAPH)))
      .addOption(new Option('-m, --min-block <us>', 'only blocks of at least this many microseconds').argParser(parseUs('-m')).default(1))
      .addOption(new Option('-M, --max-block <us>', 'only blocks of at most this many microseconds').argParser(parseUs('-M')))
      .option('-s, --state', 'split by the state blocked in: sleeping (S) or uninterruptible (D)')
      .option('--user-only', 'user stacks only')
      .option('--kernel-only', 'kernel stacks only')
      .addOption(new Option('--top <n>', 'stacks shown in the table').argParser(integerParser('--top', { min: 1, max: 1_000_000, example: '20' })).default(10));
  },
  probe: () => probePaths(SKELETON, PATHS),
  kernels: { best: '5.5 tp_btf (sched_switch)', fallback: '5.10 raw_tp' },
  paths: PATHS,
  figures: () => OFFCPUTIME(),
  run(ctx, opts) {
    if (opts.userOnly && opts.kernelOnly) throw new UsageError('--user-only and --kernel-only cannot be used together', 'pick one, or neither for both stacks');
    if (opts.folded && ctx.out.json) throw new UsageError('--folded and --json cannot be used together', 'pick one output');
    if (opts.maxBlock !== undefined && opts.maxBlock < opts.minBlock) throw new UsageError(`-M ${opts.maxBlock} is below -m ${opts.minBlock}`, 'give -M at least -m');
    const { obj } = ctx.load(loadSpec({
      perState: Boolean(opts.state), minUs: opts.minBlock, maxUs: opts.maxBlock, userOnly: Boolean(opts.userOnly), kernelOnly: Boolean(opts.kernelOnly),
    }));
    const sym = new Symbolizer();
    // Sent again after an exec (see offcputime.bpf.c): read the new image's mappings.
    ctx.ringBuffer(obj, 'new_pids', (rec) => sym.notePid(rec.getUint32(0, true), true));
    const started = Date.now();
    if (!ctx.out.json && !opts.folded && !ctx.target.following) process.stderr.write('Tracing off-CPU time (blocked)... Hit Ctrl-C to end.\n');

    ctx.session.onFinish(() => {
      const seconds = (Date.now() - started) / 1000;
      const r = readOffcpu(obj, sym, Boolean(opts.state));
      ctx.report({ stacks: r.stacks.map((s) => ({ stack: s.folded.join(';'), total_ns: s.total_ns, count: s.count })) });
      if (opts.svg !== undefined) {
        writeOutputFile(opts.svg, flameGraphSvg(r.stacks.map((s) => ({ frames: s.folded, count: Math.round(s.total_ns / 1000) })), {
          title: 'rbtrace offcputime', subtitle: `${(r.total_ns / 1e6).toFixed(1)} ms blocked (us) over ${seconds.toFixed(1)} s`,
        }), FLAME_GRAPH);
      }
      if (ctx.out.json) ctx.out.record(record(r, seconds));
      else ctx.out.write(opts.folded ? foldedText(r) : tableText(r, opts.top, ctx.color));
      if (r.stackErrors) ctx.log.warn(stackErrorsNote(r.stackErrors));
      if (r.dropped) ctx.log.warn(`${r.dropped} blocks not counted (more than the distinct stacks rbtrace keeps)`);
      if (r.unpaired) ctx.log.verbose(`${r.unpaired} blocks not counted: the kernel switched the task back in without a sched_switch event`);
      for (const [file, why] of sym.failures) ctx.log.verbose(escapeForTerminal(`no symbols from ${file}: ${why}`));
    });
  },
});
