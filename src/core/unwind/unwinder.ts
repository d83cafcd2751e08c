// User-space unwinding of a sampled user stack (x86-64), as perf's
// --call-graph dwarf does: the registers at the sample and a copy of the
// stack from sp up, walked frame by frame with each module's .eh_frame CFI
// (cfi.ts), and by frame pointers where a module has none.
import { openMapping } from '../linux/procfiles.js';
import type { Region } from '../stacks/maps.js';
import { CfiTable, evalExpression, type CfiRow } from './cfi.js';

const RBP = 6;
const RSP = 7;
const RA = 16;

/** Frames kept per stack (the kernel's perf_event_max_stack default). */
export const MAX_FRAMES = 127;

export interface StackCopy {
  ip: number;
  sp: number;
  bp: number;
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

  constructor(private readonly regionOf: RegionOf) {}

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
    const load = (addr: number): number | undefined => {
      if (addr < s.sp || addr + 8 > top) return undefined;
      const at = addr - s.sp;
      return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 0x1_0000_0000;
    };
    const regs = new Map<number, number>([[RSP, s.sp], [RBP, s.bp]]);
    let pc = s.ip;
    const pcs: number[] = [pc];
    let byFramePointer = 0;
    for (;;) {
      if (pcs.length >= MAX_FRAMES) return { pcs, end: 'depth', byFramePointer };
      // A return address points after the call: look up the call itself.
      const { row, mapped } = this.rowFor(pid, pcs.length === 1 ? pc : pc - 1);
      if (!mapped) return { pcs, end: 'no mapping', byFramePointer };
      const sp = regs.get(RSP)!;
      let cfa: number | undefined;
      let ra: number | undefined;
      const next = new Map<number, number>();
      if (row) {
        const raRule = row.regs.get(row.ra);
        if (raRule?.kind === 'undefined') return { pcs, end: 'end', byFramePointer };
        cfa = row.cfa.kind === 'reg' ? add(regs.get(row.cfa.reg), row.cfa.offset)
          : evalExpression(row.cfa.expr, (n) => (n === RA ? pc : regs.get(n)), load);
        if (cfa === undefined) return { pcs, end: 'no rule', byFramePointer };
        for (const [reg, rule] of row.regs) {
          let v: number | undefined;
          if (rule.kind === 'offset') v = load(cfa + rule.offset);
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
        // rbp is callee-saved: unchanged unless the row says where it was stored.
        if (!next.has(RBP) && regs.has(RBP)) next.set(RBP, regs.get(RBP)!);
      } else {
        // No CFI for this code: frame pointers (push %rbp; mov %rsp,%rbp).
        const bp = regs.get(RBP);
        if (bp === undefined || bp < sp) return { pcs, end: 'no rule', byFramePointer };
        cfa = bp + 16;
        ra = load(bp + 8);
        const savedBp = load(bp);
        if (savedBp !== undefined) next.set(RBP, savedBp);
        byFramePointer++;
      }
      if (ra === undefined) return { pcs, end: 'stack copy', byFramePointer };
      if (ra === 0) return { pcs, end: 'end', byFramePointer };
      if (cfa <= sp && pcs.length > 1) return { pcs, end: 'loop', byFramePointer };
      next.set(RSP, cfa);
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
