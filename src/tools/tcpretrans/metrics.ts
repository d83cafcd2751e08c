// tcpretrans for `rbtrace exporter --tools tcpretrans`: retransmits per
// network namespace as counters (the kernel's counts since load, as
// TcpRetransSegs counts them per namespace). No events, no per-connection
// counts: only the per-namespace map is read.
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import type { Sample } from '../../core/metrics/exposition.js';
import { lostEvents } from '../../core/bpf/ringbuf.js';
import { loadSpec } from './probe.js';
import { readNetns, tcpretransMaps, type NetnsRow } from './collect.js';

export const tcpretransSource: SourceFactory = (ctx): MetricSource => {
  // Unscoped: retransmits run in timers and softirqs, where the current task
  // is not the connection's; every namespace is counted whatever --cgroup says.
  const loaded = ctx.load(loadSpec({ events: false, flows: false, tlp: true }), { unscoped: true });
  if (loaded.has('fe_tlp')) loaded.link('kp_tlp')?.destroy();
  const tlp = loaded.has('fe_tlp') || loaded.has('kp_tlp');
  const maps = tcpretransMaps(loaded.obj);
  const lostMap = loaded.obj.map('rbtrace_lost');
  const samples = (rows: NetnsRow[], field: 'retrans' | 'segs' | 'synack' | 'failed' | 'tlp'): Sample[] =>
    rows.map((r) => ({ labels: { netns: String(r.netns) }, value: r[field] }));
  return {
    tool: 'tcpretrans',
    path: loaded.path.name,
    degraded: loaded.degraded(),
    lost: () => lostEvents(lostMap),
    close: () => loaded.obj.close(),
    collect() {
      const rows = readNetns(maps);
      return [
        { name: 'rbtrace_tcp_retransmits', type: 'counter', help: 'TCP retransmits (tcp:tcp_retransmit_skb), per network namespace inode.', samples: samples(rows, 'retrans') },
        { name: 'rbtrace_tcp_retransmitted_segments', type: 'counter', help: 'Segments of those retransmits (as TcpRetransSegs counts them), per network namespace inode.', samples: samples(rows, 'segs') },
        { name: 'rbtrace_tcp_synack_retransmits', type: 'counter', help: 'SYN-ACKs retransmitted by listeners, per network namespace inode.', samples: samples(rows, 'synack') },
        { name: 'rbtrace_tcp_retransmit_failures', type: 'counter', help: 'Retransmits that failed to go out (reported by Linux 6.16+), per network namespace inode.', samples: samples(rows, 'failed') },
        ...(tlp ? [{ name: 'rbtrace_tcp_loss_probes', type: 'counter' as const, help: 'Tail-loss probes (tcp_send_loss_probe calls), per network namespace inode.', samples: samples(rows, 'tlp') }] : []),
      ];
    },
  };
};
