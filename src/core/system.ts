// Facts about the running system that every tool checks before loading BPF.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { RbtraceError } from './errors.js';

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

export interface Privileges {
  root: boolean;
  capBpf: boolean;
  capPerfmon: boolean;
  capSysAdmin: boolean;
  sufficient: boolean;
}

export function privileges(): Privileges {
  const caps = effectiveCaps();
  const p = {
    root: process.geteuid?.() === 0,
    capBpf: hasCap(caps, CAP_BPF),
    capPerfmon: hasCap(caps, CAP_PERFMON),
    capSysAdmin: hasCap(caps, CAP_SYS_ADMIN),
  };
  return { ...p, sufficient: p.capSysAdmin || (p.capBpf && p.capPerfmon) };
}

export function checkPrivileges(): void {
  if (!privileges().sufficient) {
    throw new RbtraceError('loading BPF programs needs root, or CAP_BPF and CAP_PERFMON',
      { hint: 'run it with sudo' });
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

export function tracefsMounted(): boolean {
  return existsSync(`${libbpfTracefsDir()}/events`);
}

/**
 * tracepoint/ programs need tracefs; a fresh machine may not have it mounted.
 * As root we mount it (as `perf` and `bpftrace` do). Returns what was done.
 */
export function ensureTracefs(): 'mounted' | 'already' {
  if (tracefsMounted()) return 'already';
  const dir = libbpfTracefsDir();
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', dir], { stdio: 'pipe' });
  } catch (err) {
    throw new RbtraceError(`tracefs is not mounted at ${dir} and mounting it failed`,
      { hint: `mount it: mount -t tracefs nodev ${dir}`, cause: err });
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

/** The prefix of syscall entry points on this architecture (for fentry/kprobe on syscalls). */
export function syscallPrefix(): string {
  switch (process.arch) {
    case 'x64': return '__x64_sys_';
    case 'arm64': return '__arm64_sys_';
    case 's390x': return '__s390x_sys_';
    case 'riscv64': return '__riscv_sys_';
    default: return '__se_sys_';
  }
}
