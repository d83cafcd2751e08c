// tcpretrans's probe: the attach paths of src/bpf/tcpretrans.bpf.c and the
// .rodata of its outputs. The command (index.ts) and the exporter
// (metrics.ts) both load through here.
import type { AttachPath, OptionalProgram } from '../../core/bpf/paths.js';
import type { LoadSpec } from '../../core/tool.js';
import { SKELETON } from '../../generated/tcpretrans.js';

type Path = AttachPath<typeof SKELETON>;

/**
 * -l: tcp_send_loss_probe() has no tracepoint. fentry is preferred, kprobe
 * where fentry is refused; both optional, so tcpretrans runs without them
 * (index.ts drops the kprobe when both attached).
 */
export const TLP_PROGRAMS: OptionalProgram<typeof SKELETON>[] = [
  { program: 'fe_tlp', without: 'tail-loss probes through the kprobe instead, where kprobes are allowed' },
  { program: 'kp_tlp', without: 'tail-loss probes only through fentry (none when fentry is refused too; retransmits are still counted)' },
];

/**
 * tcp:tcp_retransmit_skb (4.15+) and tcp:tcp_retransmit_synack (4.14+), in
 * every namespace: tp_btf reads the socket without probe_read's cost; raw_tp
 * and the tracefs tracepoint are the fallbacks. No kprobe path: the
 * tracepoints are in every kernel rbtrace supports.
 */
export function pathsFor(tlp: boolean): Path[] {
  const optional = tlp ? TLP_PROGRAMS : [];
  return [
    { name: 'tp_btf', programs: ['tpb_retrans', 'tpb_synack'], optional, note: 'tcp:tcp_retransmit_skb and tcp_retransmit_synack as BTF-typed tracepoints' },
    { name: 'raw_tp', programs: ['rt_retrans', 'rt_synack'], optional, note: 'the same raw tracepoints (no tracefs needed)' },
    { name: 'tracepoint', programs: ['tp_retrans', 'tp_synack'], optional, note: 'the same tracepoints through tracefs' },
  ];
}

export interface ProbeMode {
  /** A ring-buffer record per event (the default view). */
  events: boolean;
  /** Counts per connection (-c). */
  flows: boolean;
  /** Tail-loss probes (-l). */
  tlp: boolean;
}

export function loadSpec(mode: ProbeMode): LoadSpec<typeof SKELETON> {
  return {
    skeleton: SKELETON,
    paths: pathsFor(mode.tlp),
    rodata: { want_events: mode.events, want_flows: mode.flows },
    // Unused outputs shrink (hashes are preallocated).
    configure: (obj) => {
      if (!mode.flows) obj.map('flows').maxEntries = 1;
    },
  };
}
