// perf_event_open(2), which Node and libbpf 1.1 do not wrap: rbtrace profile
// opens one software cpu-clock event per CPU and attaches its BPF program to
// each (bpf_program__attach_perf_event, which also enables the event and,
// when the link is destroyed, closes it).
import koffi from 'koffi';
import { arch } from 'node:os';

let syscallFn: koffi.KoffiFunction | undefined;

/** __NR_perf_event_open: x86_64 298, arm64 and riscv64 241 (the generic table). */
function perfEventOpenNr(): number {
  return arch() === 'x64' ? 298 : 241;
}

export const PERF_TYPE_SOFTWARE = 1;
export const PERF_COUNT_SW_CPU_CLOCK = 0;
/** sizeof(struct perf_event_attr) for PERF_ATTR_SIZE_VER5: every field up to sample_max_stack (kernel 4.8+). */
const ATTR_SIZE = 112;
const FLAG_FREQ = 1n << 10n;
const PERF_FLAG_FD_CLOEXEC = 8;

/**
 * perf_event_open(attr, pid, cpu, -1, FD_CLOEXEC) for a sampling software
 * event at `hz` samples a second: an fd, or -errno.
 */
export function perfEventOpen(o: { type: number; config: number; hz: number; pid: number; cpu: number }): number {
  const attr = Buffer.alloc(ATTR_SIZE);
  attr.writeUInt32LE(o.type, 0);          // type
  attr.writeUInt32LE(ATTR_SIZE, 4);       // size
  attr.writeBigUInt64LE(BigInt(o.config), 8);
  attr.writeBigUInt64LE(BigInt(o.hz), 16); // sample_freq (with the freq flag)
  attr.writeBigUInt64LE(FLAG_FREQ, 40);   // flags: freq; enabled at once (libbpf enables again on attach)
  syscallFn ??= koffi.load('libc.so.6').func('long syscall(long number, ...)');
  const fd = Number(syscallFn(perfEventOpenNr(), 'void *', attr, 'int', o.pid, 'int', o.cpu, 'int', -1, 'unsigned long', PERF_FLAG_FD_CLOEXEC));
  return fd < 0 ? -koffi.errno() : fd;
}
