// DWARF call frame information (.eh_frame, with .eh_frame_hdr's sorted
// table when present) of one ELF file: for an address, the rule that gives
// the caller's frame (CFA = register + offset or an expression; where the
// return address and the callee-saved registers were stored).
//
// Only what unwinding needs is read: the two sections, never the rest of
// the file. Rows are computed on demand (one FDE's instructions run up to
// the address) and cached per address: a profile meets the same return
// addresses over and over.
import type { BinaryFile } from '../linux/procfiles.js';
import { ElfFile } from '../elf/elf.js';

/** How a register of the caller is recovered. */
export type RegRule =
  | { kind: 'undefined' }                    // not recoverable (the return address: the outermost frame)
  | { kind: 'same' }                         // unchanged
  | { kind: 'offset'; offset: number }       // saved at CFA + offset
  | { kind: 'val_offset'; offset: number }   // is CFA + offset
  | { kind: 'register'; reg: number }        // in another register
  | { kind: 'expression'; expr: Uint8Array } // saved at the address the expression gives
  | { kind: 'val_expression'; expr: Uint8Array };

export type CfaRule = { kind: 'reg'; reg: number; offset: number } | { kind: 'expression'; expr: Uint8Array };

export interface CfiRow {
  cfa: CfaRule;
  /** DWARF register number -> rule; absent: "same value" for callee-saved, unknown otherwise. */
  regs: Map<number, RegRule>;
  /** The return address column. */
  ra: number;
  /** A signal frame ('S'): the return address is the interrupted pc itself, not a call's. */
  signal: boolean;
}

interface Cie {
  codeAlign: number;
  dataAlign: number;
  ra: number;
  fdeEnc: number;
  hasAug: boolean;
  signal: boolean;
  /** Initial instructions. */
  start: number;
  end: number;
}

const DW_EH_PE_omit = 0xff;

/** Little-endian reader over a section, addressed by the section's virtual address. */
class Cursor {
  pos: number;
  constructor(readonly buf: Buffer, readonly vaddr: number, at: number) {
    this.pos = at;
  }
  u8(): number {
    return this.buf[this.pos++];
  }
  u16(): number {
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  s32(): number {
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    const v = this.buf.readUInt32LE(this.pos) + this.buf.readUInt32LE(this.pos + 4) * 0x1_0000_0000;
    this.pos += 8;
    return v;
  }
  s64(): number {
    const v = Number(this.buf.readBigInt64LE(this.pos));
    this.pos += 8;
    return v;
  }
  uleb(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80) || this.pos >= this.buf.length) return result;
    }
  }
  sleb(): number {
    let result = 0;
    let mul = 1;
    let b: number;
    do {
      b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80 && this.pos < this.buf.length);
    return b & 0x40 ? result - mul : result;
  }
  cstr(): string {
    const end = this.buf.indexOf(0, this.pos);
    const s = this.buf.toString('latin1', this.pos, end < 0 ? this.buf.length : end);
    this.pos = end < 0 ? this.buf.length : end + 1;
    return s;
  }
  /** A pointer in DW_EH_PE_* encoding `enc`; `dataBase` for datarel. */
  ptr(enc: number, dataBase = 0): number {
    if (enc === DW_EH_PE_omit) return 0;
    const here = this.vaddr + this.pos;
    let v: number;
    switch (enc & 0x0f) {
      case 0x00: v = this.u64(); break;
      case 0x01: v = this.uleb(); break;
      case 0x02: v = this.u16(); break;
      case 0x03: v = this.u32(); break;
      case 0x04: v = this.u64(); break;
      case 0x09: v = this.sleb(); break;
      case 0x0a: v = this.buf.readInt16LE(this.pos); this.pos += 2; break;
      case 0x0b: v = this.s32(); break;
      case 0x0c: v = this.s64(); break;
      default: throw new Error(`pointer encoding 0x${enc.toString(16)}`);
    }
    switch (enc & 0x70) {
      case 0x10: v += here; break;     // pcrel
      case 0x30: v += dataBase; break; // datarel
      default: break;
    }
    return v;
  }
}

/** Size of a pointer in encoding `enc` with no application (FDE pc_range). */
function readRange(c: Cursor, enc: number): number {
  return c.ptr(enc & 0x0f);
}

export class CfiTable {
  private readonly cies = new Map<number, Cie>();
  /** Sorted FDE start addresses and their offsets in .eh_frame. */
  private starts: Float64Array = new Float64Array(0);
  private fdes: Float64Array = new Float64Array(0);
  private readonly rows = new Map<number, CfiRow | null>();

  private constructor(private readonly eh: Buffer, private readonly ehAddr: number) {}

  /** The table of an ELF file, or undefined when it has no .eh_frame. */
  static of(file: BinaryFile): CfiTable | undefined {
    const elf = ElfFile.open(file);
    const ehs = elf.section('.eh_frame');
    if (!ehs || ehs.type === 8 /* SHT_NOBITS */ || ehs.size === 0) return undefined;
    const t = new CfiTable(file.readAt(ehs.offset, ehs.size), ehs.addr);
    const hdr = elf.section('.eh_frame_hdr');
    if (!(hdr && t.readHeader(file.readAt(hdr.offset, hdr.size), hdr.addr))) t.scan();
    return t;
  }

  /** Built from raw sections (tests). */
  static fromSections(eh: Buffer, ehAddr: number, hdr?: Buffer, hdrAddr = 0): CfiTable {
    const t = new CfiTable(eh, ehAddr);
    if (!(hdr && t.readHeader(hdr, hdrAddr))) t.scan();
    return t;
  }

  get size(): number {
    return this.starts.length;
  }

  /** .eh_frame_hdr: version 1, then a binary-search table of (start, FDE). */
  private readHeader(buf: Buffer, addr: number): boolean {
    if (buf.length < 12 || buf[0] !== 1) return false;
    const c = new Cursor(buf, addr, 1);
    const ptrEnc = c.u8();
    const countEnc = c.u8();
    const tableEnc = c.u8();
    c.ptr(ptrEnc, addr);
    if (countEnc === DW_EH_PE_omit || tableEnc !== 0x3b) return false; // datarel|sdata4: what every linker writes
    const n = c.ptr(countEnc, addr);
    if (c.pos + n * 8 > buf.length) return false;
    this.starts = new Float64Array(n);
    this.fdes = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      this.starts[i] = addr + buf.readInt32LE(c.pos);
      this.fdes[i] = addr + buf.readInt32LE(c.pos + 4) - this.ehAddr;
      c.pos += 8;
    }
    return true;
  }

  /** No header: walk every entry of .eh_frame once. */
  private scan(): void {
    const found: [number, number][] = [];
    let at = 0;
    while (at + 8 <= this.eh.length) {
      const len = this.eh.readUInt32LE(at);
      if (len === 0) break; // the terminator
      if (len === 0xffffffff) break; // 64-bit DWARF: not in .eh_frame in practice
      const id = this.eh.readUInt32LE(at + 4);
      if (id !== 0) {
        const fde = this.fdeHead(at);
        if (fde) found.push([fde.begin, at]);
      }
      at += 4 + len;
    }
    found.sort((a, b) => a[0] - b[0]);
    this.starts = Float64Array.from(found, (f) => f[0]);
    this.fdes = Float64Array.from(found, (f) => f[1]);
  }

  private cie(at: number): Cie | undefined {
    let cie = this.cies.get(at);
    if (cie) return cie;
    const len = this.eh.readUInt32LE(at);
    const c = new Cursor(this.eh, this.ehAddr, at + 8);
    const version = c.u8();
    const aug = c.cstr();
    if (aug.includes('eh')) c.u64();
    const codeAlign = c.uleb();
    const dataAlign = c.sleb();
    const ra = version === 1 ? c.u8() : c.uleb();
    let fdeEnc = 0;
    let hasAug = false;
    if (aug.startsWith('z')) {
      hasAug = true;
      const augLen = c.uleb();
      const augEnd = c.pos + augLen;
      for (const ch of aug.slice(1)) {
        if (ch === 'R') fdeEnc = c.u8();
        else if (ch === 'L') c.u8();
        else if (ch === 'P') c.ptr(c.u8() & 0x7f);
        else if (ch === 'S' || ch === 'B' || ch === 'G') continue;
        else break;
      }
      c.pos = augEnd;
    }
    cie = { codeAlign, dataAlign, ra, fdeEnc, hasAug, signal: aug.includes('S'), start: c.pos, end: at + 4 + len };
    this.cies.set(at, cie);
    return cie;
  }

  private fdeHead(at: number): { cie: Cie; begin: number; end: number; start: number; stop: number } | undefined {
    const len = this.eh.readUInt32LE(at);
    const cieAt = at + 4 - this.eh.readUInt32LE(at + 4);
    if (cieAt < 0 || cieAt >= this.eh.length) return undefined;
    const cie = this.cie(cieAt);
    if (!cie) return undefined;
    const c = new Cursor(this.eh, this.ehAddr, at + 8);
    const begin = c.ptr(cie.fdeEnc);
    const range = readRange(c, cie.fdeEnc);
    if (cie.hasAug) c.pos += c.uleb();
    return { cie, begin, end: begin + range, start: c.pos, stop: at + 4 + len };
  }

  /** The row for address `pc` (an ELF virtual address), or undefined when no FDE covers it. */
  row(pc: number): CfiRow | undefined {
    const cached = this.rows.get(pc);
    if (cached !== undefined) return cached ?? undefined;
    let row: CfiRow | null = null;
    try {
      row = this.compute(pc) ?? null;
    } catch {
      row = null; // a malformed FDE: as if there were none (the caller falls back to frame pointers)
    }
    if (this.rows.size > 200_000) this.rows.clear();
    this.rows.set(pc, row);
    return row ?? undefined;
  }

  private compute(pc: number): CfiRow | undefined {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] <= pc) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return undefined;
    const fde = this.fdeHead(this.fdes[found]);
    if (!fde || pc < fde.begin || pc >= fde.end) return undefined;
    const { cie } = fde;
    const init: CfiRow = { cfa: { kind: 'reg', reg: 7, offset: 8 }, regs: new Map(), ra: cie.ra, signal: cie.signal };
    const state = this.execute(cie, cie.start, cie.end, init, undefined, Infinity, fde.begin);
    return this.execute(cie, fde.start, fde.stop, cloneRow(state), state, pc, fde.begin);
  }

  /** Run CFA instructions [from, to) until the location passes `pc`. `initial`: the CIE's row (for restore). */
  private execute(cie: Cie, from: number, to: number, row: CfiRow, initial: CfiRow | undefined, pc: number, begin: number): CfiRow {
    const c = new Cursor(this.eh, this.ehAddr, from);
    const stack: CfiRow[] = [];
    let loc = begin;
    const restore = (reg: number): void => {
      const r = initial?.regs.get(reg);
      if (r) row.regs.set(reg, r);
      else row.regs.delete(reg);
    };
    const block = (): Uint8Array => {
      const n = c.uleb();
      const b = this.eh.subarray(c.pos, c.pos + n);
      c.pos += n;
      return b;
    };
    while (c.pos < to) {
      const op = c.u8();
      const hi2 = op & 0xc0;
      const low = op & 0x3f;
      if (hi2 === 0x40) {
        loc += low * cie.codeAlign;
        if (loc > pc) return row;
        continue;
      }
      if (hi2 === 0x80) {
        row.regs.set(low, { kind: 'offset', offset: c.uleb() * cie.dataAlign });
        continue;
      }
      if (hi2 === 0xc0) {
        restore(low);
        continue;
      }
      switch (op) {
        case 0x00: break; // nop
        case 0x01: loc = c.ptr(cie.fdeEnc); if (loc > pc) return row; break;
        case 0x02: loc += c.u8() * cie.codeAlign; if (loc > pc) return row; break;
        case 0x03: loc += c.u16() * cie.codeAlign; if (loc > pc) return row; break;
        case 0x04: loc += c.u32() * cie.codeAlign; if (loc > pc) return row; break;
        case 0x05: { const r = c.uleb(); row.regs.set(r, { kind: 'offset', offset: c.uleb() * cie.dataAlign }); break; }
        case 0x06: restore(c.uleb()); break;
        case 0x07: row.regs.set(c.uleb(), { kind: 'undefined' }); break;
        case 0x08: row.regs.set(c.uleb(), { kind: 'same' }); break;
        case 0x09: { const r = c.uleb(); row.regs.set(r, { kind: 'register', reg: c.uleb() }); break; }
        case 0x0a: stack.push(cloneRow(row)); break;
        case 0x0b: { const s = stack.pop(); if (s) { row.cfa = s.cfa; row.regs = s.regs; } break; }
        case 0x0c: { const r = c.uleb(); row.cfa = { kind: 'reg', reg: r, offset: c.uleb() }; break; }
        case 0x0d: { const r = c.uleb(); row.cfa = { kind: 'reg', reg: r, offset: row.cfa.kind === 'reg' ? row.cfa.offset : 0 }; break; }
        case 0x0e: { const o = c.uleb(); if (row.cfa.kind === 'reg') row.cfa = { ...row.cfa, offset: o }; break; }
        case 0x0f: row.cfa = { kind: 'expression', expr: block() }; break;
        case 0x10: { const r = c.uleb(); row.regs.set(r, { kind: 'expression', expr: block() }); break; }
        case 0x11: { const r = c.uleb(); row.regs.set(r, { kind: 'offset', offset: c.sleb() * cie.dataAlign }); break; }
        case 0x12: { const r = c.uleb(); row.cfa = { kind: 'reg', reg: r, offset: c.sleb() * cie.dataAlign }; break; }
        case 0x13: { const o = c.sleb() * cie.dataAlign; if (row.cfa.kind === 'reg') row.cfa = { ...row.cfa, offset: o }; break; }
        case 0x14: { const r = c.uleb(); row.regs.set(r, { kind: 'val_offset', offset: c.uleb() * cie.dataAlign }); break; }
        case 0x15: { const r = c.uleb(); row.regs.set(r, { kind: 'val_offset', offset: c.sleb() * cie.dataAlign }); break; }
        case 0x16: { const r = c.uleb(); row.regs.set(r, { kind: 'val_expression', expr: block() }); break; }
        // AARCH64_negate_ra_state (SPARC's GNU_window_save, never in x86-64 CFI): x30 signed
        // from here. Nothing to track: every aarch64 return address is masked (arch.ts).
        case 0x2d: break;
        case 0x2e: c.uleb(); break; // GNU_args_size
        case 0x2f: { const r = c.uleb(); row.regs.set(r, { kind: 'offset', offset: -c.uleb() * cie.dataAlign }); break; }
        default: throw new Error(`CFA instruction 0x${op.toString(16)}`);
      }
    }
    return row;
  }
}

function cloneRow(r: CfiRow): CfiRow {
  return { cfa: r.cfa, regs: new Map(r.regs), ra: r.ra, signal: r.signal };
}

/**
 * Evaluate a DWARF expression of the kind CFI uses (PLT entries' CFA:
 * rsp + 8 + ((rip & 15) >= 11 ? 8 : 0); saved registers at reg + offset).
 * `reg(n)` gives a register's value, `load` a word of memory; undefined
 * when an operation is outside that subset or a value is unknown.
 */
export function evalExpression(expr: Uint8Array, reg: (n: number) => number | undefined, load: (addr: number) => number | undefined, push?: number): number | undefined {
  const st: number[] = push === undefined ? [] : [push];
  const c = new Cursor(Buffer.from(expr.buffer, expr.byteOffset, expr.byteLength), 0, 0);
  while (c.pos < expr.length) {
    const op = c.u8();
    if (op >= 0x30 && op <= 0x4f) { st.push(op - 0x30); continue; }  // lit0..31
    if (op >= 0x70 && op <= 0x8f) {                                  // breg0..31
      const v = reg(op - 0x70);
      if (v === undefined) return undefined;
      st.push(v + c.sleb());
      continue;
    }
    const b = st.length > 0 ? st.pop()! : undefined;
    const a = (): number | undefined => st.pop();
    switch (op) {
      case 0x06: { if (b === undefined) return undefined; const v = load(b); if (v === undefined) return undefined; st.push(v); break; } // deref
      case 0x08: if (b !== undefined) st.push(b); st.push(c.u8()); break;                 // const1u
      case 0x0a: if (b !== undefined) st.push(b); st.push(c.u16()); break;               // const2u
      case 0x0c: if (b !== undefined) st.push(b); st.push(c.u32()); break;               // const4u
      case 0x10: if (b !== undefined) st.push(b); st.push(c.uleb()); break;              // constu
      case 0x11: if (b !== undefined) st.push(b); st.push(c.sleb()); break;              // consts
      case 0x12: if (b === undefined) return undefined; st.push(b, b); break;            // dup
      case 0x1a: { const x = a(); if (x === undefined || b === undefined) return undefined; st.push(Number(BigInt(x) & BigInt(b))); break; } // and
      case 0x22: { const x = a(); if (x === undefined || b === undefined) return undefined; st.push(x + b); break; }  // plus
      case 0x23: if (b === undefined) return undefined; st.push(b + c.uleb()); break;    // plus_uconst
      case 0x1c: { const x = a(); if (x === undefined || b === undefined) return undefined; st.push(x - b); break; }  // minus
      case 0x24: { const x = a(); if (x === undefined || b === undefined) return undefined; st.push(x * 2 ** b); break; } // shl
      case 0x2a: { const x = a(); if (x === undefined || b === undefined) return undefined; st.push(x >= b ? 1 : 0); break; } // ge
      default: return undefined;
    }
  }
  return st.pop();
}
