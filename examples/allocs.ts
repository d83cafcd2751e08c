// allocs: malloc, free and realloc calls of a program, with a log2
// histogram of the sizes asked for (the talk's counters, on a Rust program:
// Rust's default global allocator is libc's malloc, so any Rust, C or C++
// program that links libc is seen the same way).
//   sudo rbtrace run allocs.ts -- ./target/release/myapp
import { defineTool, findLibrary, loadUserProbes, scalarLayout, formatBytes, formatLog2Hist, log2HistToJson, renderTable } from 'rbtrace';
import { OBJECT_FILE, RODATA, ENUMS, fn_stats_layout, type FnStats } from './allocs.skel.js';

const FUNCTIONS = [
  { name: 'malloc', program: 'on_malloc', index: ENUMS.FN_MALLOC },
  { name: 'free', program: 'on_free', index: ENUMS.FN_FREE },
  { name: 'realloc', program: 'on_realloc', index: ENUMS.FN_REALLOC },
] as const;

const u32 = scalarLayout('u32');

export default defineTool<{ hist?: boolean }>({
  name: 'allocs',
  summary: 'malloc/free/realloc calls and sizes of a program',
  textOnly: ['hist'],
  options(cmd) {
    cmd.option('--hist', 'print the size histogram of malloc and realloc');
  },
  run(ctx, opts) {
    // The libc of the -p process, else the system's (what a -- CMD maps).
    const libc = findLibrary('c', ctx.target.pid);
    const pid = ctx.target.pid ?? -1;
    const { obj } = loadUserProbes(ctx, {
      object: OBJECT_FILE,
      pathName: 'uprobe',
      note: `${libc}: ${FUNCTIONS.map((f) => f.name).join(', ')}`,
      programs: FUNCTIONS.map((f) => f.program),
      rodataSpec: RODATA,
      rodata: { self_tgid: process.pid },
      attach: (o) => FUNCTIONS.map((f) => o.program(f.program).attachUprobe({ binary: libc, func: f.name, pid })),
    });
    const stats = obj.map('stats').typed(u32, fn_stats_layout);
    let previous = new Map<number, FnStats>();
    const report = () => {
      const now = new Map(stats.entries().map(([k, v]) => [k.value, v]));
      // Per-CPU array entries cannot be deleted: each report is the difference from the previous one.
      const delta = FUNCTIONS.map((f) => {
        const v = now.get(f.index)!;
        const p = previous.get(f.index);
        return { function: f.name, calls: v.calls - (p?.calls ?? 0), bytes: v.bytes - (p?.bytes ?? 0), sizes: v.sizes.map((s, i) => s - (p?.sizes[i] ?? 0)) };
      });
      previous = now;
      if (ctx.opts.json) {
        const time = new Date().toISOString();
        for (const d of delta) ctx.out.record({ time, function: d.function, calls: d.calls, bytes: d.bytes, ...(d.function === 'free' ? {} : { sizes: log2HistToJson(d.sizes) }) });
        return;
      }
      ctx.out.line(renderTable(['FUNCTION', 'CALLS', 'BYTES'], delta.map((d) => [d.function, d.calls, d.function === 'free' ? '-' : formatBytes(d.bytes)])));
      if (opts.hist) for (const d of delta.filter((x) => x.function !== 'free')) ctx.out.line(`\n${d.function}:\n${formatLog2Hist(d.sizes, 'bytes')}`);
    };
    ctx.session.onInterval(report);
    ctx.session.onFinish(report);
  },
});
