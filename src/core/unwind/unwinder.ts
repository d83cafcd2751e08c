// User-space unwinding of a sampled user stack (x86-64 and aarch64: one
// walk, the registers of arch.ts), as perf's --call-graph dwarf does: the
// registers at the sample and a copy of the stack from sp up, walked frame
// by frame with each module's .eh_frame CFI (cfi.ts), and by frame pointers
// where a module has none.
import { openMapping } from '../linux/procfiles.js';
import type { Region } from '../stacks/maps.js';
import { hostUnwindArch, X86_64, type UnwindArch } from './arch.js';
import { CfiTable, evalExpression, type CfiRow } from './cfi.js';

/** Frames kept per stack (the kernel's perf_event_max_stack default). */
export const MAX_FRAMES = 127;

export interface StackCopy {
  ip: number;
  sp: number;
  /** The frame pointer: rbp, x29. */
  bp: number;
  /** aarch64: x30, the link register (PAC bits stripped: arch.ts returnAddress). */
  lr?: number;
  /** The stack from sp up. */
  bytes: Uint8Array;
}

export interface Unwound {
  /** Innermost first: the sampled pc, then return addresses. */
  pcs: number[];
  /** Why the walk ended: 'end' (the outermost frame says so), or a reason it was cut. */
  end: 'end' | 'stack copy' | 'no mapping' | 'no rule' | 'depth' | 'loop';
  /** Frames found through frame pointers (a module without CFI). */
  byFramePointer: number;
}

interface ModuleCfi {
  table?: CfiTable;
  /** ELF virtual address = file offset + bias, per PT_LOAD. */
  loads: { offset: number; vaddr: number; filesz: number }[];
}

/** Where to find a pid's mappings (the Symbolizer's snapshot). */
export type RegionOf = (pid: number, addr: number) => Region | undefined;

export class Unwinder {
  /** dev:ino -> the module's CFI (null: unreadable). */
  private readonly modules = new Map<string, ModuleCfi | null>();
  readonly failures = new Map<string, string>();

  constructor(private readonly regionOf: RegionOf, readonly arch: UnwindArch = hostUnwindArch() ?? X86_64) {}

  private moduleOf(pid: number, r: Region): ModuleCfi | undefined {
    const key = `${r.major}:${r.minor}:${r.inode}`;
    let m = this.modules.get(key);
    if (m === undefined) {
      try {
        const file = openMapping(pid, r);
        m = { table: CfiTable.of(file), loads: programLoads(file.readAt(0, 64), (o, n) => file.readAt(o, n)) };
      } catch (err) {
        this.failures.set(r.path, (err as Error).message);
        m = null;
      }
      this.modules.set(key, m);
    }
    return m ?? undefined;
  }

  /** The CFI row for `pc` in `pid`, or undefined (no module, no CFI, no FDE). */
  private rowFor(pid: number, pc: number): { row?: CfiRow; mapped: boolean } {
    const r = this.regionOf(pid, pc);
    if (!r) return { mapped: false };
    if (!r.file) return { mapped: true };
    const m = this.moduleOf(pid, r);
    if (!m?.table) return { mapped: true };
    const off = pc - r.start + r.offset;
    const load = m.loads.find((l) => off >= l.offset && off < l.offset + l.filesz);
    if (!load) return { mapped: true };
    return { row: m.table.row(off - load.offset + load.vaddr), mapped: true };
  }

  unwind(pid: number, s: StackCopy): Unwound {
    const dv = new DataView(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength);
    const top = s.sp + s.bytes.byteLength;
    const { sp: SP, fp: FP, pc: PC, lr: LR, raHighMask } = this.arch;
    // hiMask: a return address's high word loses its PAC bits (aarch64) before
    // it becomes a number (a signed one is above 2^53: its low bits would go).
    const load = (addr: number, hiMask = 0xffff_ffff): number | undefined => {
      if (addr < s.sp || addr + 8 > top) return undefined;
      const at = addr - s.sp;
      return dv.getUint32(at, true) + ((dv.getUint32(at + 4, true) & hiMask) >>> 0) * 0x1_0000_0000;
    };
    const regs = new Map<number, number>([[SP, s.sp], [FP, s.bp]]);
    if (LR !== undefined && s.lr !== undefined) regs.set(LR, s.lr);
    let pc = s.ip;
    const pcs: number[] = [pc];
    let byFramePointer = 0;
    for (;;) {
      if (pcs.length >= MAX_FRAMES) return { pcs, end: 'depth', byFramePointer };
      // A return address points after the call: look up the call itself.
      const { row, mapped } = this.rowFor(pid, pcs.length === 1 ? pc : pc - 1);
      if (!mapped) return { pcs, end: 'no mapping', byFramePointer };
      const sp = regs.get(SP)!;
      let cfa: number | undefined;
      let ra: number | undefined;
      const next = new Map<number, number>();
      if (row) {
        const raRule = row.regs.get(row.ra);
        if (raRule?.kind === 'undefined') return { pcs, end: 'end', byFramePointer };
        cfa = row.cfa.kind === 'reg' ? add(regs.get(row.cfa.reg), row.cfa.offset)
          : evalExpression(row.cfa.expr, (n) => (n === PC ? pc : regs.get(n)), load);
        if (cfa === undefined) return { pcs, end: 'no rule', byFramePointer };
        for (const [reg, rule] of row.regs) {
          let v: number | undefined;
          if (rule.kind === 'offset') v = load(cfa + rule.offset, reg === row.ra ? raHighMask : undefined);
          else if (rule.kind === 'val_offset') v = cfa + rule.offset;
          else if (rule.kind === 'register') v = regs.get(rule.reg);
          else if (rule.kind === 'same') v = regs.get(reg);
          else if (rule.kind === 'expression') {
            const at = evalExpression(rule.expr, (n) => regs.get(n), load, cfa);
            v = at === undefined ? undefined : load(at);
          } else if (rule.kind === 'val_expression') v = evalExpression(rule.expr, (n) => regs.get(n), load, cfa);
          if (v !== undefined) next.set(reg, v);
        }
        ra = next.get(row.ra);
        // No rule for the link register (aarch64: a leaf, or before the
        // prologue stored x30): the return address is still in it. Only
        // the sampled frame has it (a caller's x30 was the call's own
        // return address; it is known again only where a rule restores it).
        if (ra === undefined && row.ra === LR && !row.regs.has(LR)) ra = regs.get(LR);
        // The frame pointer is callee-saved: unchanged unless the row says where it was stored.
        if (!next.has(FP) && regs.has(FP)) next.set(FP, regs.get(FP)!);
      } else {
        // No CFI for this code: frame pointers. x86-64 (push %rbp; mov
        // %rsp,%rbp) and aarch64 (stp x29, x30, [sp, #-N]!; mov x29, sp)
        // alike: [fp] the caller's fp, [fp + 8] the return address. (On
        // aarch64 a leaf without CFI that keeps its return address in x30
        // loses its caller here, as the kernel's own fp walk does.)
        const bp = regs.get(FP);
        if (bp === undefined || bp < sp) return { pcs, end: 'no rule', byFramePointer };
        cfa = bp + 16;
        ra = load(bp + 8, raHighMask);
        const savedBp = load(bp);
        if (savedBp !== undefined) next.set(FP, savedBp);
        byFramePointer++;
      }
      if (ra === undefined) return { pcs, end: 'stack copy', byFramePointer };
      if (ra === 0) return { pcs, end: 'end', byFramePointer };
      if (cfa <= sp && pcs.length > 1) return { pcs, end: 'loop', byFramePointer };
      next.set(SP, cfa);
      regs.clear();
      for (const [k, v] of next) regs.set(k, v);
      pc = ra;
      pcs.push(pc);
    }
  }
}

function add(a: number | undefined, b: number): number | undefined {
  return a === undefined ? undefined : a + b;
}

/** PT_LOAD segments from an ELF header (64-bit little-endian). */
function programLoads(head: Buffer, read: (off: number, len: number) => Buffer): ModuleCfi['loads'] {
  if (head.length < 64) return [];
  const phoff = Number(head.readBigUInt64LE(0x20));
  const phentsize = head.readUInt16LE(0x36);
  const phnum = head.readUInt16LE(0x38);
  const ph = read(phoff, phnum * phentsize);
  const out: ModuleCfi['loads'] = [];
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    if (o + 56 > ph.length) break;
    if (ph.readUInt32LE(o) !== 1) continue;
    out.push({ offset: Number(ph.readBigUInt64LE(o + 8)), vaddr: Number(ph.readBigUInt64LE(o + 16)), filesz: Number(ph.readBigUInt64LE(o + 32)) });
  }
  return out;
}
