// gcstat on a Ruby without USDT probes: rows per interval from the VM's own
// counters (vm-counters.ts), polled often (VM_POLL_MS) so that a command's
// collections are seen until shortly before it exits (its memory is gone
// once it has). No BPF: nothing is attached, nothing can be refused.
import type { ToolContext } from '../../core/tool.js';
import { RbtraceError, UsageError } from '../../core/errors.js';
import { readComm } from '../../core/linux/process.js';
import type { BinaryFile } from '../../core/linux/procfiles.js';
import { term } from '../../core/output/format.js';
import { readRss } from './collect.js';
import type { LayoutResult } from './layout.js';
import { VM_POLL_MS, VmGcReader, ZERO_COUNTERS, countersDelta, processTree, timeFields, type VmGcCounters } from './vm-counters.js';
import { vmPrinter, vmRowsText, type VmRow } from './views.js';
import type { GcstatOptions } from './index.js';

interface Watched {
  reader: VmGcReader;
  comm: string;
  /** What the last row reported, and the latest reading. */
  reported: VmGcCounters;
  latest: VmGcCounters;
  gone: boolean;
}

/** The whole run: refusals first, then rows each interval and at the end. */
export function runFromVmCounters(ctx: ToolContext, opts: GcstatOptions, binary: BinaryFile, noProbes: string, found: LayoutResult): void {
  if (!('layout' in found)) {
    throw new RbtraceError(`${noProbes}; and without them gcstat reads the VM's counters, but ${found.why}`,
      { hint: 'use a ruby built with ./configure --enable-dtrace, or one whose layout rbtrace knows (3.1, 3.3)' });
  }
  const layout = found.layout;
  if (opts.log) throw new UsageError(`--log needs the USDT probes, and ${binary.name} has none (its VM's counters give totals per interval, not each collection)`, 'drop --log');
  if (opts.chart === true) throw new UsageError('--chart needs the USDT probes (phase steps), and this ruby has none', 'drop --chart');
  const root = ctx.target.pid;
  if (root === undefined && !ctx.target.command) {
    throw new RbtraceError(`${binary.name} has no USDT probes, so gcstat reads the VM's counters of one process and its children`, { hint: 'give it with -p PID, or start it with -- CMD' });
  }
  const fromCommand = ctx.target.command !== undefined;
  const pollMs = fromCommand ? VM_POLL_MS.command : VM_POLL_MS.process;
  const watched = new Map<number, Watched>();
  const seen = new Set<number>();
  const t = timeFields(layout);
  ctx.log.verbose(`no USDT probes in ${binary.name}: reading Ruby ${layout.version}'s GC counters from /proc/PID/mem every ${pollMs} ms ` +
    `(profile.count at +0x${layout.count.toString(16)}; GC time: ${t.mark !== undefined ? 'marking and sweeping' : t.total !== undefined ? 'total only' : 'not known for this version'})`);

  const discover = () => {
    const tgid = ctx.target.tgid;
    if (tgid === undefined) return;
    for (const pid of fromCommand ? processTree(tgid) : [tgid]) {
      if (watched.has(pid) || VmGcReader.maps(pid, binary) === undefined) continue;
      const reader = new VmGcReader(pid, binary, layout);
      const first = reader.read();
      if (!first) continue; // the VM is not made yet: next poll
      // A command's process counts from its start; a running one from now.
      const base = fromCommand ? ZERO_COUNTERS : first;
      watched.set(pid, { reader, comm: readComm(pid), reported: base, latest: first, gone: false });
      seen.add(pid);
    }
  };
  const poll = () => {
    discover();
    for (const w of watched.values()) {
      if (w.gone) continue;
      const now = w.reader.read();
      if (now) w.latest = now;
      else w.gone = true;
    }
  };
  discover();
  if (root !== undefined && watched.size === 0) {
    throw new RbtraceError(`cannot read the Ruby VM of pid ${root}: it does not map ${binary.name}, or its VM is not running yet`, { hint: 'check the pid, or give its libruby with --lib' });
  }
  const timer = setInterval(() => {
    try {
      poll();
    } catch (err) {
      ctx.session.fail(err);
    }
  }, pollMs);
  ctx.session.own({ close: () => { clearInterval(timer); for (const w of watched.values()) w.reader.close(); } });

  const printer = vmPrinter();
  if (!ctx.out.json) {
    ctx.banner(term`Reading Ruby ${layout.version}'s GC counters in ${binary.name}${root ? ` (pid ${root})` : ''} (no USDT probes: totals per interval, no pauses); Ctrl-C to end.`);
    ctx.out.write(printer.header());
  }
  const tick = () => {
    const time = new Date();
    const rows: VmRow[] = [];
    for (const [pid, w] of [...watched].sort((a, b) => a[0] - b[0])) {
      const d = countersDelta(w.reported, w.latest);
      w.reported = w.latest;
      const rss = readRss(pid);
      rows.push({ time: time.toISOString(), pid, comm: w.comm, source: 'vm-counters', collections: d.count, major: d.major, minor: d.minor,
        mark_ns: d.mark_ns, sweep_ns: d.sweep_ns, gc_ns: d.total_ns, rss_bytes: rss?.rss ?? null, rss_peak_bytes: rss?.peak ?? null });
      if (w.gone) {
        w.reader.close();
        watched.delete(pid);
      }
    }
    const sum = (f: (r: VmRow) => number | null) => rows.reduce((a, r) => a + (f(r) ?? 0), 0);
    ctx.report({
      collections: sum((r) => r.collections), major: sum((r) => r.major), minor: sum((r) => r.minor),
      phases: [
        ...(t.mark !== undefined ? [{ phase: 'mark', total_ns: sum((r) => r.mark_ns) }] : []),
        ...(t.sweep !== undefined ? [{ phase: 'sweep', total_ns: sum((r) => r.sweep_ns) }] : []),
      ],
      rss_peak_bytes: rows.reduce((a, r) => Math.max(a, r.rss_peak_bytes ?? 0), 0),
    });
    if (ctx.out.json) for (const r of rows) ctx.out.record(r);
    else ctx.out.write(vmRowsText(printer, time.toTimeString().slice(0, 8), rows));
  };
  ctx.session.onInterval(tick, 1);
  ctx.session.onFinish(() => {
    poll(); // a process still running (-p, -d): its last counts
    tick();
    if (fromCommand && seen.size === 0) ctx.log.warn(`no Ruby VM seen: no process of the command mapped ${binary.name}`);
  });
}
