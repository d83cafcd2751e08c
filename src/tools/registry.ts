// Every subcommand, with the one line `rbtrace --help` shows. Tool modules are
// imported only when run, so `rbtrace execsnoop` never loads synqueue's code.
import type { ToolDefinition } from '../core/tool.js';

export interface ToolEntry {
  name: string;
  summary: string;
  load: () => Promise<ToolDefinition<any>>;
}

export const TOOLS: ToolEntry[] = [
  { name: 'execsnoop', summary: 'trace exec() calls: new programs, their arguments and results', load: async () => (await import('./execsnoop/index.js')).default },
  { name: 'opensnoop', summary: 'trace open() calls: which files processes open, with flags and results', load: async () => (await import('./opensnoop/index.js')).default },
  { name: 'syscount', summary: 'count syscalls and their latency, like strace -c without the slowdown', load: async () => (await import('./syscount/index.js')).default },
  { name: 'tcplife', summary: 'one line per closed TCP connection: pid, addresses, bytes each way, lifetime', load: async () => (await import('./tcplife/index.js')).default },
  { name: 'tcpretrans', summary: 'TCP retransmits (and tail-loss probes) with connection, state and network namespace', load: async () => (await import('./tcpretrans/index.js')).default },
  { name: 'synqueue', summary: 'TCP SYN and accept queue fill per listener, overflows and drops, live', load: async () => (await import('./synqueue/index.js')).default },
  { name: 'strlat', summary: 'latency histograms of user-space or kernel functions (default: Ruby rb_str_new)', load: async () => (await import('./strlat/index.js')).default },
  { name: 'gcstat', summary: 'Ruby GC mark/sweep latency (USDT) and process RSS over time', load: async () => (await import('./gcstat/index.js')).default },
  { name: 'rubycalls', summary: 'Ruby method calls (Ruby and C methods) per Class#method: counts, latency (USDT)', load: async () => (await import('./rubycalls/index.js')).default },
  { name: 'rubyobjnew', summary: 'Ruby allocations by class and allocation site (path:line): counts and lengths (USDT)', load: async () => (await import('./rubyobjnew/index.js')).default },
  { name: 'mallocstat', summary: 'malloc/calloc/realloc/free counts, sizes and latency of any process', load: async () => (await import('./mallocstat/index.js')).default },
  { name: 'profile', summary: 'CPU profile by sampling user and kernel stacks: top stacks, folded stacks, SVG flame graph', load: async () => (await import('./profile/index.js')).default },
  { name: 'biolatency', summary: 'block I/O latency histograms per disk and operation; --events: one line per I/O (biosnoop)', load: async () => (await import('./biolatency/index.js')).default },
  { name: 'runqlat', summary: 'run-queue (scheduler) latency histograms, per process or cgroup, and the worst waits', load: async () => (await import('./runqlat/index.js')).default },
  { name: 'offcputime', summary: 'time threads spend blocked, by user + kernel stack: top stacks, folded stacks, SVG flame graph', load: async () => (await import('./offcputime/index.js')).default },
  { name: 'diff', summary: 'compare two runs saved with --save: figures side by side, histograms shifted or not', load: async () => (await import('./diff.js')).default },
  { name: 'exporter', summary: "the tools' figures as Prometheus metrics on /metrics, as a long-running daemon", load: async () => (await import('./exporter.js')).default },
  { name: 'doctor', summary: 'what this kernel offers rbtrace, and what each tool would use', load: async () => (await import('./doctor.js')).doctorTool(TOOLS) },
];
