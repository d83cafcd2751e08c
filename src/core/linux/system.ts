// Facts about the running system that every tool checks before loading BPF.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { RbtraceError } from '../errors.js';
import { archInfo } from '../bpf/arch.js';

/** Where the kernel's BTF lives. RBTRACE_BTF_PATH overrides it (tests use it to simulate a kernel without BTF). */
export function btfPath(): string {
  return process.env.RBTRACE_BTF_PATH || '/sys/kernel/btf/vmlinux';
}

export function hasBtf(): boolean {
  try {
    accessSync(btfPath(), constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

export function checkBtf(): void {
  if (!hasBtf()) {
    throw new RbtraceError(`this kernel has no BTF (${btfPath()} is missing)`,
      { hint: 'rbtrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, as Debian, Ubuntu, Fedora and RHEL kernels are' });
  }
}

const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

/** Effective capabilities of this process, from /proc/self/status. */
export function effectiveCaps(): bigint {
  const m = readFileSync('/proc/self/status', 'utf8').match(/^CapEff:\s*([0-9a-f]+)/m);
  return m ? BigInt('0x' + m[1]) : 0n;
}

export function hasCap(caps: bigint, bit: number): boolean {
  return (caps >> BigInt(bit)) & 1n ? true : false;
}

/**
 * What this process may do, as measured on kernel 6.18 (man/rbtrace.8,
 * PRIVILEGES): loading BPF and attaching tracepoint-less paths (raw_tp,
 * tp_btf, iter, fentry) needs CAP_BPF and CAP_PERFMON; uprobes and USDT
 * need CAP_SYS_ADMIN (perf_event_open answers EACCES without it); tracepoint/
 * attach reads event ids from tracefs, which is readable by root only.
 */
export interface Privileges {
  root: boolean;
  capBpf: boolean;
  capPerfmon: boolean;
  capSysAdmin: boolean;
  /** Can load BPF programs at all. */
  sufficient: boolean;
  /** Can attach uprobes and USDT (strlat, gcstat, mallocstat). */
  uprobes: boolean;
}

export function privileges(): Privileges {
  const caps = effectiveCaps();
  const p = {
    root: process.geteuid?.() === 0,
    capBpf: hasCap(caps, CAP_BPF),
    capPerfmon: hasCap(caps, CAP_PERFMON),
    capSysAdmin: hasCap(caps, CAP_SYS_ADMIN),
  };
  return { ...p, sufficient: p.capSysAdmin || (p.capBpf && p.capPerfmon), uprobes: p.capSysAdmin };
}

export function checkPrivileges(): void {
  if (!privileges().sufficient) {
    throw new RbtraceError('loading BPF programs needs root, or CAP_BPF and CAP_PERFMON',
      { hint: 'run it with sudo' });
  }
}

/** uprobes and USDT: a one-line error before anything is loaded, rather than EACCES from perf_event_open. */
export function checkUprobePrivileges(): void {
  if (!privileges().uprobes) {
    throw new RbtraceError('uprobes and USDT probes need CAP_SYS_ADMIN (CAP_BPF and CAP_PERFMON are not enough)',
      { hint: 'run it as root' });
  }
}

export function kernelRelease(): string {
  return release();
}

/**
 * The tracefs directory libbpf 1.1 reads tracepoint ids from: it prefers
 * /sys/kernel/debug/tracing when that path exists, else /sys/kernel/tracing.
 */
export function libbpfTracefsDir(): string {
  return existsSync('/sys/kernel/debug/tracing') ? '/sys/kernel/debug/tracing' : '/sys/kernel/tracing';
}

/** Is tracefs mounted where libbpf looks (from /proc/mounts, readable by anyone)? */
function tracefsInMounts(): boolean {
  try {
    const dir = libbpfTracefsDir();
    return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => {
      const f = l.split(' ');
      return f[1] === dir && f[2] === 'tracefs';
    });
  } catch {
    return false;
  }
}

/**
 * tracefs as this process sees it: 'readable' (tracepoint ids can be read),
 * 'root only' (mounted, but its directory is mode 0700: a non-root user
 * cannot use tracepoint/ paths), or 'not mounted'.
 */
export function tracefsState(): 'readable' | 'root only' | 'not mounted' {
  if (existsSync(`${libbpfTracefsDir()}/events`)) return 'readable';
  return tracefsInMounts() ? 'root only' : 'not mounted';
}

export function tracefsMounted(): boolean {
  return tracefsState() === 'readable';
}

/**
 * tracepoint/ programs need tracefs; a fresh machine may not have it mounted.
 * As root we mount it (as `perf` and `bpftrace` do). Returns what was done.
 */
export function ensureTracefs(): 'mounted' | 'already' {
  const state = tracefsState();
  if (state === 'readable') return 'already';
  const dir = libbpfTracefsDir();
  if (state === 'root only') {
    throw new RbtraceError(`tracefs at ${dir} is readable by root only (tracepoint programs read event ids from it)`,
      { hint: 'run it as root' });
  }
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', dir], { stdio: 'pipe' });
  } catch (err) {
    throw new RbtraceError(`tracefs is not mounted at ${dir} and mounting it failed`,
      { hint: `mount it as root: mount -t tracefs nodev ${dir}`, cause: err });
  }
  if (!tracefsMounted()) {
    throw new RbtraceError(`tracefs mounted at ${dir} but has no events/ directory`,
      { hint: 'the kernel needs CONFIG_FTRACE and CONFIG_EVENT_TRACING' });
  }
  return 'mounted';
}

export function tracepointExists(category: string, name: string): boolean {
  return existsSync(`${libbpfTracefsDir()}/events/${category}/${name}`);
}

/** The prefix of syscall entry points on this architecture (for fentry/kprobe on syscalls; src/core/bpf/arch.ts). */
export function syscallPrefix(): string {
  return archInfo()?.syscallPrefix ?? '__se_sys_';
}
