// synq: the accept queue of a TCP listener at each SYN it receives (the
// talk's tracer on tcp_v4_conn_request). It needs fentry or a kprobe on that
// function: a kernel without either (kprobes compiled out, fentry refused)
// gets rbtrace's one-line "no attach path works" error; it is proven on the
// kernels of test/vm.
//   sudo rbtrace run synq.ts --port 8080
import { defineTool, probePaths, portParser, ColumnPrinter, type AttachPath } from 'rbtrace';
import { OBJECT_FILE, RODATA, syn_event_layout } from './synq.skel.js';

const PATHS: AttachPath[] = [
  { name: 'fentry', programs: ['fe_conn_request'] },
  { name: 'kprobe', programs: ['kp_conn_request'] },
];

export default defineTool<{ port?: number }>({
  name: 'synq',
  summary: 'accept queue length and limit of a listener at each SYN (IPv4)',
  // SYNs are handled in softirq, on behalf of no process: -p and -- CMD cannot select them.
  honours: ['duration'],
  whyNot: { pid: 'SYNs are handled by the kernel for no process (use --port)', command: 'SYNs are handled by the kernel for no process (use --port)', interval: 'it prints each SYN' },
  options(cmd) {
    cmd.option('--port <port>', 'only the listener on this local port', portParser('--port'));
  },
  kernels: { best: '5.5 fentry', fallback: '4.x kprobe' },
  probe: () => probePaths(OBJECT_FILE, PATHS),
  run(ctx, opts) {
    const { obj } = ctx.load({ object: OBJECT_FILE, paths: PATHS, rodataSpec: RODATA, rodata: { targ_port: opts.port ?? 0 } });
    const columns = new ColumnPrinter([
      { name: 'TIME', width: 24 }, { name: 'PORT', width: 6, align: 'right' },
      { name: 'BACKLOG', width: 8, align: 'right' }, { name: 'MAX', width: 0 },
    ]);
    if (!ctx.opts.json) ctx.out.write(columns.header());
    ctx.ringBuffer(obj, 'events', (rec) => {
      const e = syn_event_layout.decode(rec);
      const time = new Date(ctx.session.wallTimeOf(e.ts_ns)).toISOString();
      if (ctx.opts.json) ctx.out.record({ time, port: e.port, backlog: e.backlog, max_backlog: e.max_backlog });
      else ctx.out.write(columns.row([time, e.port, e.backlog, e.max_backlog]));
    });
  },
});
