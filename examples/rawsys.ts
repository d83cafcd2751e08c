// rawsys: an strace-like log of every syscall, from the raw_syscalls
// tracepoints (the talk's collector): one line per completed call, with its
// arguments as numbers (strace decodes them; this shows what the kernel got),
// its result (errno name on failure) and its duration.
//   sudo rbtrace run rawsys.ts -- ./prog     # like strace -f -T -X raw
import { defineTool, probePaths, syscallName, errnoName, type AttachPath } from 'rbtrace';
import { OBJECT_FILE, RODATA, sys_event_layout } from './rawsys.skel.js';

const PATHS: AttachPath[] = [{ name: 'tracepoint', programs: ['sys_enter', 'sys_exit'] }];

/** strace -X raw's style: small numbers in decimal, the rest (pointers, flags) in hex. */
const arg = (v: number) => (v >= -4096 && v < 65536 ? String(v) : `0x${BigInt.asUintN(64, BigInt(v)).toString(16)}`);

export default defineTool({
  name: 'rawsys',
  summary: 'every syscall with its arguments, result and duration (strace-like)',
  honours: ['pid', 'command', 'duration'],
  whyNot: { interval: 'it prints each syscall as it returns' },
  probe: () => probePaths(OBJECT_FILE, PATHS),
  run(ctx) {
    const { obj } = ctx.load({ object: OBJECT_FILE, paths: PATHS, rodataSpec: RODATA, rodata: { self_tgid: process.pid } });
    ctx.ringBuffer(obj, 'events', (rec) => {
      const e = sys_event_layout.decode(rec);
      const name = syscallName(e.nr);
      if (ctx.opts.json) {
        ctx.out.record({ pid: e.pid, tid: e.tid, comm: e.comm, syscall: name, args: e.args, ret: e.ret, duration_ns: e.duration_ns });
        return;
      }
      const ret = e.ret < 0 && e.ret >= -4095 ? `-1 ${errnoName(-e.ret)}` : arg(e.ret);
      // Numbers only: nothing from the traced system reaches the terminal unescaped.
      ctx.out.line(`[${e.tid}] ${name}(${e.args.map(arg).join(', ')}) = ${ret} <${(e.duration_ns / 1e9).toFixed(6)}>`);
    });
  },
});
