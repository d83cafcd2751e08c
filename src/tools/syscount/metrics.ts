// syscount for `rbtrace exporter`: every process's syscalls as counters,
// and failures per (syscall, errno). Count mode (no latency: no start map).
import type { MetricSource, SourceFactory } from '../../core/metrics/source.js';
import type { Sample } from '../../core/metrics/exposition.js';
import { lostEvents } from '../../core/bpf/ringbuf.js';
import { errnoName, syscallName } from '../../core/linux/names.js';
import { SKELETON } from '../../generated/syscount.js';
import { pathsFor, sizeMaps, syscallNumbersRodata } from './probe.js';
import { readErrnoTotals, readSyscallTotals, syscountMaps } from './collect.js';

/** (syscall, errno) pairs counted in the kernel: a busy host shows a few hundred. */
const ERRNO_PAIRS = 4096;

export const syscountSource: SourceFactory = (ctx): MetricSource => {
  const mode = { byProcess: false, latency: false, hist: false };
  const loaded = ctx.load({
    skeleton: SKELETON,
    paths: pathsFor(false),
    rodata: { self_tgid: process.pid, want_errnos: true, ...syscallNumbersRodata() },
    configure: (obj) => {
      sizeMaps(obj, mode);
      obj.map('errnos').maxEntries = ERRNO_PAIRS;
    },
  });
  const maps = syscountMaps(loaded.obj);
  const lostMap = loaded.obj.map('rbtrace_lost');
  return {
    tool: 'syscount',
    path: loaded.path.name,
    lost: () => lostEvents(lostMap),
    close: () => loaded.obj.close(),
    collect() {
      const calls: Sample[] = [];
      for (const [nr, v] of readSyscallTotals(maps)) if (v.count) calls.push({ labels: { syscall: syscallName(nr) }, value: v.count });
      const errors: Sample[] = readErrnoTotals(maps.errnos).filter((e) => e.count > 0)
        .map((e) => ({ labels: { syscall: syscallName(e.nr), errno: errnoName(e.errno) }, value: e.count }));
      return [
        { name: 'rbtrace_syscalls', type: 'counter', help: 'Syscalls completed, per syscall (every process but the exporter).', samples: calls },
        { name: 'rbtrace_syscall_errors', type: 'counter', help: 'Syscalls that returned an error, per syscall and errno.', samples: errors },
      ];
    },
  };
};
