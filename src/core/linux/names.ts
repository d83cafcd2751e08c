// errno and syscall names for output (syscount -x, -e, execsnoop's RET...).
// The tables are generated from the uapi headers by scripts/gen-names.mjs at
// build time, so they follow the kernel headers instead of a hand-kept list.
import { ERRNO_NAMES, SYSCALLS } from '../../generated/names.js';
import { hostArch } from '../bpf/arch.js';

export type SyscallArch = keyof typeof SYSCALLS; // 'x86_64' | 'arm64'

/**
 * The syscall table of this machine, from process.arch (src/core/bpf/arch.ts;
 * architectures without a table get x86_64's, which keeps names plausible
 * rather than throwing in the middle of a report).
 */
export function hostSyscallArch(): SyscallArch {
  return hostArch().syscallTable;
}

/** "ENOENT" for 2 or -2 (kernel return values are negative errnos); unknown -> String(n). */
export function errnoName(n: number): string {
  return ERRNO_NAMES[Math.abs(n)] ?? String(n);
}

// Reverse maps are built once, on first use.
let errnoByName: Map<string, number> | undefined;

/**
 * errno number from a name ("ENOENT", "enoent") or a number as text ("2",
 * "-2"); aliases EWOULDBLOCK and EDEADLOCK are accepted. undefined if unknown.
 */
export function errnoNumber(nameOrNumber: string): number | undefined {
  const s = nameOrNumber.trim();
  if (/^-?\d+$/.test(s)) return Math.abs(Number(s));
  if (!errnoByName) {
    errnoByName = new Map(Object.entries(ERRNO_NAMES).map(([k, v]) => [v, Number(k)]));
    // Aliases the generator drops (same number, second name).
    errnoByName.set('EWOULDBLOCK', errnoByName.get('EAGAIN')!);
    errnoByName.set('EDEADLOCK', errnoByName.get('EDEADLK')!);
  }
  return errnoByName.get(s.toUpperCase());
}

/** "openat" for 257 on x86_64; unknown -> "[unknown: N]" (bcc syscount's wording). */
export function syscallName(nr: number, arch: SyscallArch = hostSyscallArch()): string {
  return SYSCALLS[arch][nr] ?? `[unknown: ${nr}]`;
}

/** Every syscall name of the arch's table. */
export function syscallNames(arch: SyscallArch = hostSyscallArch()): string[] {
  return Object.values(SYSCALLS[arch]);
}

const syscallByName = new Map<SyscallArch, Map<string, number>>();

/** Syscall number from its name ("openat", also "sys_openat"); undefined if the arch has none. */
export function syscallNumber(name: string, arch: SyscallArch = hostSyscallArch()): number | undefined {
  let m = syscallByName.get(arch);
  if (!m) {
    m = new Map(Object.entries(SYSCALLS[arch]).map(([k, v]) => [v, Number(k)]));
    syscallByName.set(arch, m);
  }
  return m.get(name.trim().replace(/^sys_/, ''));
}
