// strnew: how long Ruby's rb_str_new() takes, as a log2 histogram (the
// talk's uprobe + uretprobe on libruby). The libruby probed is the one the
// traced process maps (-p), the one the command's ruby links (-- CMD), else
// the system's.
//   sudo rbtrace run strnew.ts -- ruby -e '100_000.times { "a" + "b" }'
import { defineTool, findRubyBinary, loadUserProbes, scalarLayout, formatLog2Hist, log2HistToJson, integerParser } from 'rbtrace';
import { OBJECT_FILE, RODATA, DEFINES } from './strnew.skel.js';

const u32 = scalarLayout('u32');
const u64 = scalarLayout('u64');

export default defineTool<{ len?: number }>({
  name: 'strnew',
  summary: 'latency histogram of Ruby\'s rb_str_new()',
  options(cmd) {
    cmd.option('--len <n>', 'only calls creating a string of this length', integerParser('--len', { min: 0, max: 2 ** 31 }));
  },
  run(ctx, opts) {
    const binary = findRubyBinary({ pid: ctx.target.pid, command: ctx.target.command });
    const pid = ctx.target.pid ?? -1; // -1: every process; BPF keeps the -- CMD's
    const { obj } = loadUserProbes(ctx, {
      object: OBJECT_FILE,
      pathName: 'uprobe',
      programs: ['str_new_enter', 'str_new_return'],
      rodataSpec: RODATA,
      rodata: { targ_len: opts.len ?? -1 },
      // The return probe first: an entry must never miss its return.
      attach: (o) => [
        o.program('str_new_return').attachUprobe({ binary, func: 'rb_str_new', retprobe: true, pid }),
        o.program('str_new_enter').attachUprobe({ binary, func: 'rb_str_new', pid }),
      ],
    });
    const hist = obj.map('hist').typed(u32, u64);
    const report = () => {
      const slots = new Array<number>(DEFINES.STRNEW_SLOTS).fill(0);
      for (const [k, v] of hist.entries()) slots[k.value] = v.value;
      for (let i = 0; i < slots.length; i++) if (slots[i]) hist.update({ value: i }, { value: 0 });
      const count = slots.reduce((a, b) => a + b, 0);
      if (ctx.opts.json) ctx.out.record({ time: new Date().toISOString(), function: 'rb_str_new', count, hist: log2HistToJson(slots) });
      else ctx.out.line(`rb_str_new: ${count} calls\n${formatLog2Hist(slots, 'nsecs')}`);
    };
    ctx.session.onInterval(report);
    ctx.session.onFinish(report);
  },
});
