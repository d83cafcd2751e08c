// CPU sampling: a software cpu-clock perf event on every online CPU, each
// running one BPF program (SEC("perf_event")) at every tick. The process
// filter is the BPF side's (rbtrace_wanted: -p, -- CMD and its descendants,
// --cgroup), so one event per CPU serves every target, threads and children
// included, as in bcc's profile.
import type { AnySkeleton, ProgramName } from '../skeleton/types.js';
import { closeSync, readFileSync } from 'node:fs';
import { libbpf, lastErrno } from '../ffi/libbpf.js';
import { perfEventOpen, PERF_COUNT_SW_CPU_CLOCK, PERF_TYPE_SOFTWARE } from '../ffi/perf.js';
import { BpfLink, type BpfObject } from './object.js';
import { RbtraceError, errnoText } from '../errors.js';

/** Online CPUs, from "0-3,5" in /sys/devices/system/cpu/online. */
export function onlineCpus(text?: string): number[] {
  const src = (text ?? readFileSync('/sys/devices/system/cpu/online', 'utf8')).trim();
  const out: number[] = [];
  for (const part of src.split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

const ENODEV = 19;
const ENOENT = 2;

/**
 * Attach program `name` of `obj` to a cpu-clock sampling event at `hz` on
 * every online CPU; the links (and so the events) belong to the object. On a
 * failure, what was attached is destroyed and the error says why.
 */
export function attachCpuSampling<S extends AnySkeleton>(obj: BpfObject<S>, name: ProgramName<S>, hz: number): BpfLink[] {
  const prog = obj.program(name);
  const links: BpfLink[] = [];
  try {
    for (const cpu of onlineCpus()) {
      const fd = perfEventOpen({ type: PERF_TYPE_SOFTWARE, config: PERF_COUNT_SW_CPU_CLOCK, hz, pid: -1, cpu });
      if (fd === -ENODEV || fd === -ENOENT) continue; // went offline since
      if (fd < 0) {
        throw new RbtraceError(`cannot open a cpu-clock perf event on CPU ${cpu}: ${errnoText(fd)}`,
          { hint: 'run as root (or with CAP_PERFMON), and check kernel.perf_event_paranoid and kernel.perf_event_max_sample_rate' });
      }
      const ptr = libbpf.attachPerfEvent(prog.ptr, fd);
      if (!ptr) {
        const err = lastErrno();
        closeSync(fd);
        throw new RbtraceError(`cannot attach ${prog.name} to the perf event of CPU ${cpu}: ${errnoText(-err)}`);
      }
      links.push(new BpfLink(ptr, `perf_event cpu-clock cpu ${cpu}`));
    }
  } catch (err) {
    for (const l of links) l.destroy();
    throw err;
  }
  if (links.length === 0) throw new RbtraceError('no online CPU to sample');
  return links.map((l) => obj.own(l));
}
