// execve: every exec, as it happens. A kprobe on the execve syscall where
// the kernel has kprobes, the syscalls:sys_enter_execve tracepoint where it
// has not (rbtrace tries both for real, in this order; -v says which ran).
//   rbtrace build execve.bpf.c && sudo rbtrace run execve.ts -- make
import { defineTool, probePaths, ColumnPrinter, type AttachPath } from 'rbtrace';
import { OBJECT_FILE, RODATA, exec_event_layout } from './execve.skel.js';

const PATHS: AttachPath[] = [
  { name: 'kprobe', programs: ['kp_execve'], note: 'ksyscall/execve: a kprobe on the arch\'s execve wrapper' },
  { name: 'tracepoint', programs: ['tp_execve'], note: 'syscalls:sys_enter_execve (no kprobes needed)' },
];

export default defineTool({
  name: 'execve',
  summary: 'trace execve() calls: pid, parent, command name and file',
  honours: ['pid', 'command', 'duration'],
  whyNot: { interval: 'it prints each exec as it happens' },
  kernels: { best: '5.5 kprobe (ksyscall)', fallback: '4.17 tracepoint' },
  probe: () => probePaths(OBJECT_FILE, PATHS),
  run(ctx) {
    // RODATA: the -p and -- CMD filters of rbtrace.bpf.h live in .rodata too.
    const { obj } = ctx.load({ object: OBJECT_FILE, paths: PATHS, rodataSpec: RODATA });
    const columns = new ColumnPrinter([
      { name: 'PID', width: 7, align: 'right' }, { name: 'PPID', width: 7, align: 'right' },
      { name: 'COMM', width: 16 }, { name: 'FILE', width: 0 },
    ]);
    if (!ctx.opts.json) ctx.out.write(columns.header());
    ctx.ringBuffer(obj, 'events', (rec) => {
      const e = exec_event_layout.decode(rec);
      if (ctx.opts.json) ctx.out.record({ time: new Date().toISOString(), pid: e.pid, ppid: e.ppid, comm: e.comm, filename: e.filename });
      else ctx.out.write(columns.row([e.pid, e.ppid, e.comm, e.filename])); // the printer escapes comm and the file name
    });
  },
});
