// The few aarch64 instructions rbtrace reads in a library's code to find a
// hidden variable (libruby's VM pointer, its symbol table): adrp, ldr with an
// unsigned offset, b, ret. (JS bitwise results are signed: `>>> 0` before
// comparing with a constant above 2^31.)

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

/** An ELF file's e_machine. */
export function elfMachine(readAt: (off: number, len: number) => Buffer): number {
  return readAt(0x12, 2).readUInt16LE(0);
}

export const RET = 0xd65f03c0;

/** `adrp xd, page` at `pc`: { rd, page }, or undefined. */
export function adrp(pc: number, w: number): { rd: number; page: number } | undefined {
  if (((w & 0x9f000000) >>> 0) !== 0x90000000) return undefined;
  const imm = ((((w >> 5) & 0x7ffff) << 2) | ((w >>> 29) & 3)) << 11 >> 11; // 21 bits, sign-extended
  return { rd: w & 0x1f, page: Math.floor(pc / 4096) * 4096 + imm * 4096 };
}

/** `ldr wt|xt, [xn, #imm12 * size]` (unsigned offset; size 4 or 8): { rt, rn, off }, or undefined. */
export function ldr(w: number, size: 4 | 8): { rt: number; rn: number; off: number } | undefined {
  const op = size === 8 ? 0xf9400000 : 0xb9400000;
  if (((w & 0xffc00000) >>> 0) !== op) return undefined;
  return { rt: w & 0x1f, rn: (w >> 5) & 0x1f, off: ((w >> 10) & 0xfff) * size };
}

/** `b label` at `pc`: the target, or undefined. */
export function branch(pc: number, w: number): number | undefined {
  return (w & 0xfc000000) === 0x14000000 ? pc + (((w & 0x3ffffff) << 6) >> 4) : undefined; // imm26 * 4, sign-extended
}

/** The instruction words of `b` (code at `at`), with their addresses. */
export function words(at: number, b: Buffer | undefined): { pc: number; w: number }[] {
  return b ? Array.from({ length: b.length >> 2 }, (_, i) => ({ pc: at + i * 4, w: b.readUInt32LE(i * 4) })) : [];
}
