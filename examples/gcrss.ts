// gcrss: Ruby garbage collections per process, from libruby's USDT probes,
// and each process's resident memory, every second (the talk's GC tracer).
//   sudo rbtrace run gcrss.ts -- ruby app.rb
//   sudo rbtrace run gcrss.ts -p $(pgrep -f puma) --json
import { readFileSync } from 'node:fs';
import { defineTool, findRubyBinary, hasBpfCookie, loadUserProbes, scalarLayout, formatBytes, formatDuration, renderTable, RbtraceError } from 'rbtrace';
import { OBJECT_FILE, RODATA, gc_counts_layout } from './gcrss.skel.js';

const u32 = scalarLayout('u32');

/** VmRSS of a process in bytes, or null once it has gone. */
function rssOf(pid: number): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export default defineTool({
  name: 'gcrss',
  summary: 'Ruby GCs per second (USDT) and resident memory, per process',
  run(ctx) {
    const binary = findRubyBinary({ pid: ctx.target.pid, command: ctx.target.command });
    // Without BPF cookies (before 5.15) libbpf attaches USDT in a shared
    // library only with a pid; rbtrace's gcstat handles that with
    // PerProcessUsdt, this example keeps to -p there.
    if (ctx.target.pid === undefined && !hasBpfCookie()) {
      throw new RbtraceError('this kernel has no BPF cookies (5.15+): USDT probes need a pid here', { hint: 'use -p PID' });
    }
    const pid = ctx.target.pid ?? -1;
    const { obj } = loadUserProbes(ctx, {
      object: OBJECT_FILE,
      pathName: 'usdt',
      programs: ['gc_mark_begin', 'gc_mark_end'],
      rodataSpec: RODATA,
      attach: (o) => ['begin', 'end'].map((w) =>
        o.program(`gc_mark_${w}`).attachUsdt({ binary, provider: 'ruby', name: `gc__mark__${w}`, pid })),
    });
    const counts = obj.map('counts').typed(u32, gc_counts_layout);
    const totals = new Map<number, { gcs: number; mark_ns: number }>();
    const seen = new Map<number, { gcs: number; mark_ns: number }>();
    const tick = () => {
      const time = new Date().toISOString();
      const rows: [number, number, number, number | null][] = [];
      for (const [k, v] of counts.entries()) {
        const before = seen.get(k.value) ?? { gcs: 0, mark_ns: 0 };
        seen.set(k.value, { gcs: v.gcs, mark_ns: v.mark_ns });
        totals.set(k.value, { gcs: v.gcs, mark_ns: v.mark_ns });
        rows.push([k.value, v.gcs - before.gcs, v.mark_ns - before.mark_ns, rssOf(k.value)]);
      }
      if (ctx.opts.json) for (const [p, gcs, ns, rss] of rows) ctx.out.record({ time, pid: p, gcs, mark_ns: ns, rss_bytes: rss });
      else if (rows.length) ctx.out.line(renderTable(['PID', 'GCS/S', 'MARK', 'RSS'], rows.map(([p, gcs, ns, rss]) => [p, gcs, formatDuration(ns), rss === null ? '-' : formatBytes(rss)])));
    };
    // RSS per second whatever -i says (-i sets how often the table would print in other tools).
    const timer = setInterval(tick, (ctx.opts.interval ?? 1) * 1000);
    ctx.session.own({ close: () => clearInterval(timer) });
    ctx.session.onFinish(() => {
      tick();
      for (const [p, t] of totals) {
        if (ctx.opts.json) ctx.out.record({ pid: p, total_gcs: t.gcs, total_mark_ns: t.mark_ns });
        else ctx.out.line(`pid ${p}: ${t.gcs} GCs, ${formatDuration(t.mark_ns)} marking`);
      }
    });
  },
});
