// mallocstat: calls, requested bytes (log2 histogram) and latency of the
// allocator functions of any process, from uprobes on its libc (or on
// another allocator: --lib libjemalloc.so.2 --prefix je_). The counting is
// done in BPF (src/bpf/mallocstat.bpf.c). allocator.ts finds the allocator
// and its functions, probe.ts attaches, collect.ts reads per interval and at
// the end, views.ts prints. --leaks: blocks not freed, by allocating stack
// (collect.ts LeakCollector, named by leak-stacks.ts).
import { Option, type Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { loadUserProbes } from '../../core/bpf/uprobes.js';
import { ALL_PROCESSES_OPTION } from '../../core/bpf/follow-uprobes.js';
import { UsageError } from '../../core/errors.js';
import { escapeForTerminal } from '../../core/output/format.js';
import { integerParser, secondsParser } from '../../core/parsers.js';
import { cgroupFieldsOfPid } from '../../core/linux/cgroup.js';
import { MALLOCSTAT, mallocstatDelta } from '../common/figures.js';
import { displayName, findAllocator, FUNCTIONS, resolveAllocator } from './allocator.js';
import { DEFAULT_MAX_ALLOCS, probeUprobe, returnsOf, uprobeSpec } from './probe.js';
import { CountsCollector, emptyReport, LeakCollector } from './collect.js';
import { requireDwarfArch, unwindOption, type UnwindMode } from '../../core/unwind/option.js';
import { leaksJson, leakWarnings, renderLeaks, renderReport, reportRecord, TEXT_GROUPS } from './views.js';

export interface MallocstatOptions {
  allProcesses?: boolean;
  latency?: boolean;     // -L
  perProcess?: boolean;  // -P
  lib?: string;
  prefix: string;
  leaks?: boolean;
  older?: number;
  maxAllocs?: number;
  top?: number;
  unwind: UnwindMode;
}
export default defineTool<MallocstatOptions>({
  name: 'mallocstat',
  summary: 'malloc/calloc/realloc/free counts, sizes and latency of any process',
  textOnly: ['top'],
  help: `Examples:
  rbtrace mallocstat -p 1234                  allocator calls of a process, until Ctrl-C
  rbtrace mallocstat -L -- ./myprog           with the latency of every function
  rbtrace mallocstat -P -i 5                  every process, every 5 seconds
  rbtrace mallocstat --lib libjemalloc.so.2 --prefix je_ -p 1234
  rbtrace mallocstat --json -o m.json -- ruby app.rb   NDJSON to m.json (the command owns stdout)
  rbtrace mallocstat --leaks -- ./myprog     blocks never freed, by the stack that allocated them
  rbtrace mallocstat --leaks --older 60 -i 60 -p 1234   blocks live for a minute or more, every minute
  rbtrace mallocstat --leaks --unwind dwarf -p 1234      allocating stacks through code without frame pointers`,
  options(cmd: Command) {
    cmd
      .option('-L, --latency', 'the latency of every function: AVG, MAX and TOTAL columns')
      .option('-P, --per-process', 'one report per process')
      .option('--lib <lib>', 'the allocator: a library name or path (default: the libc the target uses)')
      .option('--prefix <prefix>', "prefix of the allocator's function names (e.g. je_)", '')
      .option(...ALL_PROCESSES_OPTION)
      .option('--leaks', 'also report blocks not freed at the end (and each -i), by allocating stack, largest first')
      .addOption(new Option('--older <secs>', 'with --leaks: only blocks allocated at least this long before the report')
        .argParser(secondsParser('--older', { min: 0 })))
      .addOption(new Option('--max-allocs <n>', `with --leaks: live blocks tracked at most (default ${DEFAULT_MAX_ALLOCS}); more are counted and reported`)
        .argParser(integerParser('--max-allocs', { min: 1, max: 100_000_000, example: '5000000' })))
      .addOption(new Option('-T, --top <n>', `with --leaks: stacks shown, largest first (default ${TEXT_GROUPS}; bcc memleak -T)`)
        .argParser(integerParser('-T', { min: 1, max: 1_000_000, what: 'a number of stacks', example: '10' })))
      .addOption(unwindOption('with --leaks: up to 16 KiB of stack sent per allocation'));
  },
  kernels: { best: '5.10 uprobe' },
  figures: (opts) => MALLOCSTAT({ ...opts, functions: FUNCTIONS.map((f) => f.name) }),
  probe: () => {
    // doctor: can a uprobe program on libc's malloc load and attach here?
    const binary = findAllocator({}, undefined);
    const malloc = resolveAllocator(binary, '', false).probed.find((p) => p.name === 'malloc')!;
    return probeUprobe(binary, malloc);
  },
  run(ctx, opts) {
    const leaksOnly = opts.older !== undefined ? '--older' : opts.maxAllocs !== undefined ? '--max-allocs' : opts.top !== undefined ? '-T'
      : opts.unwind === 'dwarf' ? '--unwind dwarf' : undefined;
    if (!opts.leaks && leaksOnly) throw new UsageError(`${leaksOnly} needs --leaks`, 'add --leaks');
    const leaks = Boolean(opts.leaks);
    const maxAllocs = opts.maxAllocs ?? DEFAULT_MAX_ALLOCS;
    const copies = opts.unwind === 'dwarf';
    if (copies) requireDwarfArch();
    const binary = findAllocator({ pid: ctx.target.pid, command: ctx.target.command }, opts.lib);
    const { probed, missing } = resolveAllocator(binary, opts.prefix, Boolean(opts.latency), opts.lib !== undefined);
    if (missing.length) ctx.log.verbose(`not in ${binary} (not probed): ${missing.join(', ')}`);
    for (const p of probed) if (p.aliases.length) ctx.log.verbose(`${p.aliases.join(', ')}: same code as ${p.name} in ${binary}, counted as ${p.name}`);

    const loaded = loadUserProbes(ctx, uprobeSpec(binary, probed, { perProcess: Boolean(opts.perProcess), leaks, maxAllocs, allProcesses: Boolean(opts.allProcesses), copies }));
    const returns = returnsOf(probed, leaks);
    ctx.log.verbose(`uprobes on ${probed.map((p) => `${p.symbol}@0x${p.offset.toString(16)}${p.timed ? ' (timed)' : returns.includes(p) ? ' (return)' : ''}`).join(', ')}`);
    let tracker: LeakCollector | undefined;
    if (leaks) {
      tracker = new LeakCollector(loaded.obj, { perProcess: Boolean(opts.perProcess), command: ctx.target.command?.argv[0], olderS: opts.older, copies });
      const t = tracker;
      if (ctx.target.pid) t.notePid(ctx.target.pid);
      ctx.ringBuffer(loaded.obj, 'ms_events', (rec) => t.onEvent(rec));
      const c = t.copies;
      if (c) ctx.ringBuffer(loaded.obj, 'ms_copies', (rec) => c.onCopy(rec));
    }
    ctx.banner(escapeForTerminal(`Tracing ${probed.map(displayName).join(', ')} in ${binary}... Hit Ctrl-C to end.`));

    const perProcess = Boolean(opts.perProcess);
    const reader = new CountsCollector(loaded.obj, perProcess);
    let intervals = 0;
    const report = (final: boolean) => {
      const now = new Date();
      let reports = reader.read();
      for (const r of reports) ctx.report(mallocstatDelta(r, probed));
      if (!perProcess && reports.length === 0) reports = [emptyReport(0)];
      const empty = reports.every((r) => r.stats.size === 0);
      // Nothing since the last interval's report: no empty table, but JSON
      // readers always get the record that says the run ended.
      if (final && intervals > 0 && empty && !tracker && !opts.json) return;
      if (!final) intervals++;
      let leakReport = tracker?.read(final);
      if (leakReport && final) for (const w of leakWarnings(leakReport, maxAllocs)) ctx.log.warn(w);
      if (final && tracker?.copies) ctx.log.verbose(`--unwind dwarf: ${tracker.copies.stats.copies} allocations' stacks unwound, ${tracker.copies.stats.complete} to the outermost frame`);
      for (const r of reports) {
        // -P: the process's cgroup, read now (omitted once it is gone).
        const cg = perProcess ? cgroupFieldsOfPid(r.pid) : {};
        if (opts.json) {
          const rec = reportRecord(r, probed, {
            time: now, pid: perProcess ? r.pid : ctx.target.tgid ?? null, perProcess, cg, intervalS: opts.interval,
            leaks: leakReport && leaksJson(leakReport, maxAllocs), final,
          });
          ctx.out.record(rec);
          leakReport = undefined; // -P: the leaks go with the first record
        } else {
          ctx.out.write(renderReport(ctx, r, probed, perProcess, cg) + '\n');
        }
      }
      if (leakReport && !opts.json) ctx.out.write(renderLeaks(ctx, leakReport, { olderS: opts.older, top: opts.top, unwind: opts.unwind }) + '\n');
      // -P with no process to report: the leaks in a record of their own.
      else if (leakReport) ctx.out.record({ time: now.toISOString(), ...leaksJson(leakReport, maxAllocs), ...(final ? { final: true } : {}) });
    };
    ctx.session.onInterval(() => {
      if (!opts.json) ctx.out.write(ctx.color.dim(new Date().toTimeString().slice(0, 8)) + '\n');
      report(false);
    });
    ctx.session.onFinish(() => report(true));
  },
});
