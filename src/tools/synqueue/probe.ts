// synqueue's probe: which programs of src/bpf/synqueue.bpf.c load on which
// attach path, the .rodata the options become, and the iterators a load
// gives the listener table. The command (index.ts) and the exporter
// (metrics.ts) both load through here.
import type { AttachPath, Loaded, OptionalProgram } from '../../core/bpf/paths.js';
import type { BpfLink } from '../../core/bpf/object.js';
import type { LoadSpec } from '../../core/tool.js';
import { SKELETON, type ProgramName } from '../../generated/synqueue.js';

const TAIL: ProgramName[] = ['tpb_kfree_skb', 'tpb_synack'];
const CLASSIC: ProgramName[] = ['tp_kfree_skb', 'tp_synack'];
/** iter/task_file (5.8+): every namespace's listeners and owners in one walk (listener-table.ts). */
const FILES_ITER: OptionalProgram<typeof SKELETON> = {
  program: 'dump_listener_files',
  without: 'listeners found by one iter/tcp walk per network namespace, owners by a /proc/PID/fd scan',
};
/** iter/bpf_map_elem (5.9+, as iter/tcp): listeners no process holds, read again by address; attached to its map once loaded. */
const OWNERLESS_ITER: OptionalProgram<typeof SKELETON> = {
  program: 'dump_ownerless',
  without: 'listeners no process holds: found by walking rbtrace\'s network namespace every interval',
  attachedByTool: true,
};
const dataReady = (program: ProgramName): OptionalProgram<typeof SKELETON> => ({
  program,
  without: 'accept queue max = the most the per-interval snapshots saw, enqueued = null, overflows inferred from sk_drops',
});

/**
 * Best first. The iter/tcp walk is in every path: it is the snapshot where
 * iter/task_file is refused, and it finds the listeners no process holds.
 * fentry and kprobe see each enqueue at inet_csk_complete_hashdance(); the
 * tracepoint paths through sock:sk_data_ready, which kernels before 6.2
 * lack: there it is optional (see ENQUEUE_PROGRAMS). The other iterators
 * only make the snapshot cheaper.
 */
export const ATTACH_PATHS: AttachPath<typeof SKELETON>[] = [
  {
    name: 'fentry',
    programs: ['dump_listeners', 'fe_syn4', 'fe_syn6', 'fe_enqueue', ...TAIL],
    optional: [FILES_ITER, OWNERLESS_ITER],
    note: 'fentry on tcp_v{4,6}_conn_request (every SYN) and inet_csk_complete_hashdance (every enqueue) + tp_btf kfree_skb/tcp_retransmit_synack + iter/task_file (every namespace, 5.8+) and iter/tcp',
  },
  {
    name: 'kprobe',
    programs: ['dump_listeners', 'kp_syn4', 'kp_syn6', 'kp_enqueue', ...CLASSIC],
    optional: [FILES_ITER, OWNERLESS_ITER],
    note: 'kprobes on tcp_v{4,6}_conn_request (every SYN) and inet_csk_complete_hashdance (every enqueue) + skb/tcp tracepoints + iter/task_file (every namespace, 5.8+) and iter/tcp',
  },
  {
    name: 'tp_btf',
    programs: ['dump_listeners', ...TAIL],
    optional: [dataReady('tpb_data_ready'), FILES_ITER, OWNERLESS_ITER],
    note: 'tp_btf sk_data_ready (6.2+)/kfree_skb/tcp_retransmit_synack + iter/task_file (every namespace, 5.8+) and iter/tcp; SYN-time overflows inferred from sk_drops, no per-listener SYN cookie count',
  },
  {
    name: 'tracepoint',
    programs: ['dump_listeners', ...CLASSIC],
    optional: [dataReady('tp_data_ready'), FILES_ITER, OWNERLESS_ITER],
    note: 'sock:sk_data_ready (6.2+), skb:kfree_skb, tcp:tcp_retransmit_synack + iter/task_file (every namespace, 5.8+) and iter/tcp; SYN-time overflows inferred from sk_drops, no per-listener SYN cookie count',
  },
];

/** Programs that see each connection join an accept queue (max lengths, enqueued, --hist). */
const ENQUEUE_PROGRAMS: ProgramName[] = ['fe_enqueue', 'kp_enqueue', 'tpb_data_ready', 'tp_data_ready'];

/** Paths that see every SYN (so count overflows and cookies one by one). */
const PER_SYN = new Set(['fentry', 'kprobe']);

/** What ctx.load() (or the exporter's SourceContext.load) takes: --events and --hist are .rodata. */
export function loadSpec(opts: { events?: boolean; hist?: boolean } = {}): LoadSpec<typeof SKELETON> {
  return {
    skeleton: SKELETON,
    paths: ATTACH_PATHS,
    rodata: { want_events: Boolean(opts.events), want_hist: Boolean(opts.hist) },
  };
}

/** What the path that loaded can see, which the rows say (null fields, inferred overflows). */
export interface Sight {
  /** The attach path's name (goes into each report). */
  attach: string;
  /** It sees every SYN (fentry, kprobe): overflows and cookies counted one by one. */
  perSyn: boolean;
  /** It sees each enqueue (max lengths, enqueued, --hist). */
  seesEnqueues: boolean;
}

export function sightOf(loaded: Loaded<typeof SKELETON>): Sight {
  return {
    attach: loaded.path.name,
    perSyn: PER_SYN.has(loaded.path.name),
    seesEnqueues: ENQUEUE_PROGRAMS.some((p) => loaded.has(p)),
  };
}

/** The iterators of a load, which the listener table walks with. */
export interface WalkLinks {
  /** iter/tcp (dump_listeners): one namespace's listeners, the creator's. */
  tcp: BpfLink;
  /** iter/task_file (dump_listener_files): every namespace's held listeners and owners in one walk; absent before 5.8. */
  files?: BpfLink;
  /** iter/bpf_map_elem over the `ownerless` map (dump_ownerless): the listeners no process holds, read again by address. */
  ownerless?: BpfLink;
}

/** The iterators of a load (task_file is an optional program: 5.8+); dump_ownerless is attached here, to its map, only with task_file. */
export function walkLinks(loaded: Loaded<typeof SKELETON>): WalkLinks {
  const tcp = loaded.link('dump_listeners')!;
  const files = loaded.link('dump_listener_files');
  if (!files) return { tcp };
  // Without it (refused: some kernels' policy forbids iter/bpf_map_elem), rbtrace's namespace is walked every interval instead.
  const ownerless = loaded.attachOptional('dump_ownerless', (prog) => prog.attachIterMap(loaded.obj.map('ownerless')));
  return { tcp, files, ...(ownerless ? { ownerless } : {}) };
}
