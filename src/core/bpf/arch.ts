// Everything that depends on the CPU architecture, in one place.
//
// rbtrace is built for x86-64 and arm64 (scripts/build-bpf.sh compiles every
// BPF object twice, with __TARGET_ARCH_x86 and __TARGET_ARCH_arm64, into
// build/bpf/x86/ and build/bpf/arm64/); at run time process.arch picks the
// row below. The BPF side's differences (pt_regs fields behind PT_REGS_PARM*
// in libbpf's bpf_tracing.h, the syscall number's register in syscount, the
// return-address rule in strlat) are compiled in by __TARGET_ARCH_*.
// USDT argument specs need nothing here: libbpf parses each note's operands
// for the architecture it was built for, and the libbpf.so.1 we load is the
// machine's own.

export type BpfArch = 'x86' | 'arm64';

export interface ArchInfo {
  /** process.arch */
  node: 'x64' | 'arm64';
  /** __TARGET_ARCH_<bpf> and build/bpf/<bpf>/ */
  bpf: BpfArch;
  /** `uname -m` */
  machine: string;
  /** src/generated/names.ts's syscall table */
  syscallTable: 'x86_64' | 'arm64';
  /** Prefix of the syscall entry points (fentry/kprobe on a syscall): the pt_regs wrappers. */
  syscallPrefix: string;
  /**
   * The kernel function every native syscall goes through, for syscount's
   * fentry path (src/tools/syscount/probe.ts names its programs per
   * architecture). x86-64: x64_sys_call(regs, nr), 6.9+ (and late 6.1.y),
   * returns the result. arm64: invoke_syscall(regs, scno, sc_nr, table)
   * (static, in BTF and kallsyms on Debian 12's 6.1 and 6.12), returns
   * nothing: the result is read from regs->regs[0] at exit.
   */
  syscallDispatcher: { func: string };
  /** The machine field ldconfig -p prints for this architecture's libraries. */
  ldconfigTag: string;
  /** Debian's multiarch library directories. */
  libDirs: string[];
  /** ELF e_machine of native binaries. */
  elfMachine: number;
}

const ARCHES: Record<'x64' | 'arm64', ArchInfo> = {
  x64: {
    node: 'x64',
    bpf: 'x86',
    machine: 'x86_64',
    syscallTable: 'x86_64',
    syscallPrefix: '__x64_sys_',
    syscallDispatcher: { func: 'x64_sys_call' },
    ldconfigTag: 'x86-64',
    libDirs: ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'],
    elfMachine: 62, // EM_X86_64
  },
  arm64: {
    node: 'arm64',
    bpf: 'arm64',
    machine: 'aarch64',
    syscallTable: 'arm64',
    syscallPrefix: '__arm64_sys_',
    syscallDispatcher: { func: 'invoke_syscall' },
    ldconfigTag: 'AArch64',
    libDirs: ['/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu'],
    elfMachine: 183, // EM_AARCH64
  },
};

/** Every architecture rbtrace is built for. */
export const SUPPORTED_ARCHES: readonly ArchInfo[] = Object.values(ARCHES);

/** The row for `arch` (default: this process's), or undefined if rbtrace is not built for it. */
export function archInfo(arch: string = process.arch): ArchInfo | undefined {
  return arch === 'x64' || arch === 'arm64' ? ARCHES[arch] : undefined;
}

/**
 * The row for this machine. On an architecture without BPF objects (s390x,
 * riscv64, ...) the x86-64 row keeps names and tables plausible; loading an
 * object fails with a clear error first (bpfArchDir).
 */
export function hostArch(): ArchInfo {
  return archInfo() ?? ARCHES.x64;
}

/** The build/bpf subdirectory of this architecture's objects, or an error text. */
export function bpfArchDir(arch: string = process.arch): { dir: string } | { error: string } {
  const a = archInfo(arch);
  if (!a) return { error: `no BPF objects for this architecture (${arch}): rbtrace is built for ${SUPPORTED_ARCHES.map((x) => x.node).join(' and ')}` };
  return { dir: a.bpf };
}
