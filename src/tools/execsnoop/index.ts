// execsnoop: trace exec() calls, like bcc's execsnoop. probe.ts loads
// src/bpf/execsnoop.bpf.c on the sched path (successful execs) or on a
// syscall path (with -x, failures too); collect.ts turns its ring-buffer
// records into one record per exec, and views.ts prints each as a row of a
// streamed table (or NDJSON).
import { Option, type Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { integerParser, uidParser } from '../../core/parsers.js';
import { UsageError } from '../../core/errors.js';
import { EXECSNOOP } from '../common/figures.js';
import { DEFINES, SKELETON } from '../../generated/execsnoop.js';
import { attachPaths, loadSpec, sizeScratch } from './probe.js';
import { ExecCollector } from './collect.js';
import { ExecTable, execFigure } from './views.js';

export type { ExecRecord } from './collect.js';

export interface ExecsnoopOptions {
  timestamp?: boolean;   // -t
  time?: boolean;        // -T
  fails?: boolean;       // -x
  uid?: number;          // -u
  printUid?: boolean;    // -U
  name?: RegExp;         // -n
  line?: RegExp;         // -l
  quote?: boolean;       // -q
  maxArgs: number;
}

function regexParser(flag: string) {
  return (text: string): RegExp => {
    try {
      return new RegExp(text);
    } catch (err) {
      throw new UsageError(`${flag}: bad regular expression '${text}': ${(err as Error).message}`);
    }
  };
}

export default defineTool<ExecsnoopOptions>({
  name: 'execsnoop',
  summary: 'trace exec() calls: new programs, their arguments and results',
  honours: ['pid', 'command', 'duration'],
  whyNot: { interval: 'it prints each exec as it happens' },
  textOnly: ['timestamp', 'time', 'printUid', 'quote'],
  help: `Examples:
  rbtrace execsnoop                  every exec on the system
  rbtrace execsnoop -x -T            with failed ones, and the time of day
  rbtrace execsnoop -n '^python'     commands whose name matches a regex
  rbtrace execsnoop -- make -j2      what a build runs
  rbtrace execsnoop --json | jq .args`,
  options(cmd: Command) {
    cmd
      .option('-t, --timestamp', 'TIME(s) column: seconds since rbtrace started')
      .option('-T, --time', 'TIME column: wall-clock time (HH:MM:SS)')
      .option('-x, --fails', 'include failed exec()s (RET shows the errno name)')
      .addOption(new Option('-u, --uid <uid>', 'only execs by this user (name, or uid 0 to 4294967294)').argParser(uidParser('-u')))
      .option('-U, --print-uid', 'UID column')
      .addOption(new Option('-n, --name <regex>', 'only commands whose name (comm) matches').argParser(regexParser('-n')))
      .addOption(new Option('-l, --line <regex>', 'only commands with an argument that matches').argParser(regexParser('-l')))
      .option('-q, --quote', 'put each argument in double quotes')
      .addOption(new Option('--max-args <n>', `arguments kept per exec (1 to ${DEFINES.EXECSNOOP_MAX_ARGS})`).default(64)
        .argParser(integerParser('--max-args', { min: 1, max: DEFINES.EXECSNOOP_MAX_ARGS, example: String(DEFINES.EXECSNOOP_MAX_ARGS) })));
  },
  probe: () => {
    // The default path decides whether execsnoop runs; -x (failed execs) may need more (syscall hooks).
    const main = probePaths(SKELETON, attachPaths(false), sizeScratch);
    try {
      return `${main}; with -x: ${probePaths(SKELETON, attachPaths(true), sizeScratch)}`;
    } catch (err) {
      return `${main}; -x unavailable: ${(err as Error).message}`;
    }
  },
  kernels: { best: '5.10 sched (-x: fentry)', fallback: '5.10 kprobe, tracepoint' },
  figures: EXECSNOOP,
  run(ctx, opts) {
    const loaded = ctx.load(loadSpec(opts));
    const session = ctx.session;
    const execs = new ExecCollector(opts, session);
    const table = new ExecTable(opts, { cgroup: Boolean(ctx.target.cgroup), container: execs.hostHasContainers() }, session);
    if (!opts.json) ctx.out.write(table.header());

    ctx.ringBuffer(loaded.obj, 'events', (rec) => {
      const exec = execs.record(rec);
      if (!exec) return;
      ctx.report(execFigure(exec.rec));
      if (opts.json) ctx.out.record(exec.rec);
      else ctx.out.write(table.row(exec));
    });
  },
});
