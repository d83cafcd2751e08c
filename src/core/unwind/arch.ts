// What the one stack walk (unwinder.ts) needs to know of an architecture:
// its DWARF register numbers and where the return address lives before a
// function has stored it. The BPF records carry the same registers on both
// (ip, sp, bp = the frame pointer, lr = arm64's link register; 0 on x86-64).

export interface UnwindArch {
  name: 'x86-64' | 'aarch64';
  /** DWARF numbers of the stack pointer and the frame pointer (rsp/rbp, sp/x29). */
  sp: number;
  fp: number;
  /** The number a CFA expression reads the pc by (x86-64's PLT expression reads rip, 16). */
  pc: number;
  /**
   * The register that holds the return address at a function's entry
   * (aarch64: x30, the link register); undefined where a call pushes it
   * on the stack (x86-64). While a function has not stored it (a leaf, a
   * prologue), its CFI row has no rule for that column: "same value".
   */
  lr?: number;
  /**
   * Bits of the high word of a return address kept: pointer authentication
   * (aarch64, -mbranch-protection=standard in Debian's arm64 builds) puts a
   * PAC above the virtual address bits of a signed return address.
   */
  raHighMask: number;
}

export const X86_64: UnwindArch = { name: 'x86-64', sp: 7, fp: 6, pc: 16, raHighMask: 0xffff_ffff };

/**
 * aarch64: x29 frame pointer, x30 link register, 31 sp, 32 pc (DWARF for
 * the Arm 64-bit architecture). Return addresses are masked to their low 48
 * bits: the PAC of a signed one sits in bits 48-54 and 56-63 (Linux enables
 * top-byte-ignore for data only, so an instruction address's PAC also takes
 * the top byte), and user space addresses are below 2^48 on Debian's arm64
 * kernels (CONFIG_ARM64_VA_BITS=48; a 52-bit VA kernel still maps user
 * memory below 2^48 unless a program asks mmap for more, which glibc and
 * ruby do not). The exact mask (ptrace's NT_ARM_PAC_MASK) would need a
 * ptrace attach per process. Every return address is masked, signed or not
 * (so the CFI's negate_ra_state needs no tracking): an unsigned user address has no bit set
 * above 47, so the mask leaves it as it is, and x30 at the sample is
 * covered between paciasp and the CFI row that says so alike.
 */
export const AARCH64: UnwindArch = { name: 'aarch64', sp: 31, fp: 29, pc: 32, lr: 30, raHighMask: 0xffff };

/** The walk for this machine's architecture (undefined: none, e.g. riscv64). */
export function hostUnwindArch(arch: string = process.arch): UnwindArch | undefined {
  return arch === 'x64' ? X86_64 : arch === 'arm64' ? AARCH64 : undefined;
}

/** A 64-bit return address (a record's lr) as a number, its PAC bits stripped (2^53 would lose low bits of a signed one). */
export function returnAddress(a: UnwindArch, v: bigint | number): number {
  const b = BigInt(v);
  return Number(b >> 32n & BigInt(a.raHighMask)) * 0x1_0000_0000 + Number(b & 0xffff_ffffn);
}
