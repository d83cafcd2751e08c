// opensnoop: every open(), openat() and openat2() with its process, name,
// flags and result, like bcc's opensnoop. src/bpf/opensnoop.bpf.c sends one
// record per completed call (probe.ts loads it); collect.ts decodes it and
// names relative paths (resolve.ts); views.ts prints bcc's line or NDJSON.
// Records the ring buffer had no room for are counted and reported
// (src/core/tool.ts watchLosses): never dropped silently.
import { Option, type Command } from 'commander';
import { defineTool } from '../../core/tool.js';
import { probePaths } from '../../core/bpf/paths.js';
import { integerParser, pidParser, uidParser } from '../../core/parsers.js';
import { UsageError } from '../../core/errors.js';
import { hostArch } from '../../core/bpf/arch.js';
import { bytesText } from '../../core/output/json.js';
import { ColumnPrinter } from '../../core/output/table.js';
import { cgroupColumns, containerOf } from '../../core/linux/cgroup.js';
import { OPENSNOOP } from '../common/figures.js';
import { SKELETON } from '../../generated/opensnoop.js';
import { DEFAULT_BUFFER_PAGES, MAX_BUFFER_PAGES, loadSpec, pathsFor, sizeMaps } from './probe.js';
import { OpenCollector } from './collect.js';
import { columns, flagValues, hasFlag, lineCells, openFigures, openRecord } from './views.js';

export interface OpensnoopOptions {
  timestamp?: boolean;  // -T
  printUid?: boolean;   // -U
  failed?: boolean;     // -x
  tid?: number;         // -t
  uid?: number;         // -u
  name?: string;        // -n
  extended?: boolean;   // -e
  flag?: string[];      // -f
  fullPath?: boolean;   // -F (the default)
  asGiven?: boolean;    // --as-given
  bufferPages: number;  // -b
}

const ARCH = hostArch().node;
const FLAGS = flagValues(ARCH);

function parseFlag(text: string, previous: string[] = []): string[] {
  const name = text.trim().toUpperCase();
  const full = name.startsWith('O_') ? name : `O_${name}`;
  if (!FLAGS.has(full)) throw new UsageError(`-f: unknown open flag '${text}'`, `one of ${[...FLAGS.keys()].join(', ')}`);
  return [...previous, full];
}

function parseBufferPages(text: string): number {
  const n = integerParser('-b', { min: 1, max: MAX_BUFFER_PAGES, example: '1024' })(text);
  if ((n & (n - 1)) !== 0) throw new UsageError(`-b: ${n} is not a power of two`, `e.g. -b ${2 ** Math.ceil(Math.log2(n))}`);
  return n;
}

export default defineTool<OpensnoopOptions>({
  name: 'opensnoop',
  summary: 'trace open() calls: which files processes open, with flags and results',
  honours: ['pid', 'command', 'duration'],
  whyNot: { interval: 'it prints each open as it happens' },
  textOnly: ['timestamp', 'printUid', 'extended', 'asGiven'],
  help: `Examples:
  rbtrace opensnoop                    every open on the system
  rbtrace opensnoop -x                 only failed opens
  rbtrace opensnoop -p 1234 -e         one process, with decoded flags and mode
  rbtrace opensnoop -n nginx           processes whose name contains "nginx"
  rbtrace opensnoop -f O_WRONLY -f O_RDWR   opens for writing
  rbtrace opensnoop -- git status      what a command opens
  rbtrace opensnoop --json -x | jq .full_path`,
  options(cmd: Command) {
    cmd
      .option('-T, --timestamp', 'TIME(s) column: seconds since rbtrace started')
      .option('-U, --print-uid', 'UID column')
      .option('-x, --failed', 'only failed opens (filtered in the kernel)')
      .addOption(new Option('-t, --tid <tid>', 'only this thread (shows TID instead of PID)').argParser(pidParser('-t', 'a thread id')))
      .addOption(new Option('-u, --uid <uid>', 'only opens by this user (name, or uid 0 to 4294967294)').argParser(uidParser('-u')))
      .option('-n, --name <name>', 'only processes whose name (comm) contains NAME')
      .option('-e, --extended', 'FLAGS (decoded, as strace prints them) and MODE columns')
      .addOption(new Option('-f, --flag <flag>', 'only opens with this flag (O_WRONLY, O_CREAT, ...); repeat for any of several').argParser(parseFlag))
      .option('-F, --full-path', 'PATH made absolute against the cwd or dirfd (the default; bcc\'s flag)')
      .option('--as-given', 'PATH as passed to the call, not made absolute')
      .addOption(new Option('-b, --buffer-pages <n>', 'ring buffer size in 4 KiB pages, a power of two (default 256: 1 MiB)')
        .default(DEFAULT_BUFFER_PAGES).argParser(parseBufferPages));
  },
  probe: () => probePaths(SKELETON, pathsFor(), (obj) => sizeMaps(obj)),
  kernels: { best: '5.10 fentry (fexit on the open entry points)', fallback: '5.10 tracepoint, raw_tp' },
  figures: OPENSNOOP,
  run(ctx, opts) {
    if (opts.fullPath && opts.asGiven) throw new UsageError('-F and --as-given cannot be used together', 'pick one');
    const loaded = ctx.load(loadSpec({ failed: opts.failed, tid: opts.tid, uid: opts.uid, bufferPages: opts.bufferPages }));
    const collector = new OpenCollector();
    const session = ctx.session;
    const mode = { timestamp: Boolean(opts.timestamp), printUid: Boolean(opts.printUid), byTid: opts.tid !== undefined, extended: Boolean(opts.extended), asGiven: Boolean(opts.asGiven) };
    const cg = cgroupColumns([], { cgroup: Boolean(ctx.target.cgroup), container: collector.hasContainers(containerOf) });
    const printer = new ColumnPrinter(columns(mode, cg.headers));
    if (!opts.json) ctx.out.write(printer.header());
    const flagFilter = opts.flag?.map((f) => [f, FLAGS.get(f)!] as const);

    ctx.ringBuffer(loaded.obj, 'events', (rec) => {
      const r = collector.decode(rec);
      const comm = bytesText(r.comm);
      if (opts.name !== undefined && !comm.includes(opts.name)) return;
      if (flagFilter && !flagFilter.some(([name, value]) => hasFlag(r.flags, name, value))) return;
      ctx.report(openFigures({ comm, ret: r.ret }));
      if (opts.json) ctx.out.record(openRecord(r, new Date(session.wallTimeOf(r.ts_ns)).toISOString(), ARCH));
      else ctx.out.write(printer.row(lineCells(r, mode, ARCH, session.secondsSinceStart(r.ts_ns), cg.cells(r))));
    });
  },
});
