// A small ELF reader for user-space probes: symbols (.symtab and .dynsym),
// file offsets of functions (what a uprobe attaches to), DT_NEEDED, and
// SystemTap SDT notes (.note.stapsdt, the USDT probes). Turning mangled
// symbol names into the names users write is src/core/elf/demangle.ts.
//
// Only what rbtrace needs: ELF64 little-endian (x86_64, aarch64, riscv64).
// No external tools (nm, readelf) at run time.
import { RbtraceError } from '../errors.js';
import { BinaryFile, openFile } from '../linux/procfiles.js';

const SHT_SYMTAB = 2;
const SHT_NOTE = 7;
const SHT_DYNSYM = 11;
const SHT_DYNAMIC = 6;
const PT_LOAD = 1;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const DT_NEEDED = 1;

export interface ElfSection {
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
}

export interface ElfSymbol {
  name: string;
  /** st_value: the virtual address. */
  value: number;
  size: number;
  /** STT_* */
  type: number;
  /** STB_* */
  bind: number;
  /** 0: undefined (imported). */
  shndx: number;
  /** Which table it came from. */
  table: '.symtab' | '.dynsym';
}

export interface SdtNote {
  provider: string;
  name: string;
  /** Address of the probe (the nop). */
  pc: number;
  /** Address of the semaphore, 0 if none. */
  semaphore: number;
  /** Argument spec, e.g. "-4@%eax 8@%rdx". */
  args: string;
}

interface Segment {
  vaddr: number;
  offset: number;
  filesz: number;
  flags: number;
}

/**
 * The most rbtrace reads from one ELF file (headers, symbol and string
 * tables, .dynamic, SDT notes), and the most symbols it parses (~400 bytes
 * of heap each). The largest tables on the development machine: node's
 * 185,000 symbols in 17 MB, librustc_driver's 27 MB: ten times that fits.
 */
export const MAX_ELF_READ_BYTES = 256 * 1024 * 1024;
export const MAX_ELF_SYMBOLS = 2_000_000;

/** Part of the file, addressed by file offset. */
class Bytes {
  private readonly dv: DataView;
  constructor(readonly buf: Buffer, readonly base: number) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  has(off: number, len: number): boolean {
    return off >= this.base && off + len <= this.base + this.buf.length;
  }
  u8(off: number): number {
    return this.buf[off - this.base];
  }
  u16(off: number): number {
    return this.dv.getUint16(off - this.base, true);
  }
  u32(off: number): number {
    return this.dv.getUint32(off - this.base, true);
  }
  u64(off: number): number {
    return Number(this.dv.getBigUint64(off - this.base, true));
  }
  cstr(off: number): string {
    const at = off - this.base;
    if (at < 0 || at >= this.buf.length) return '';
    let end = at;
    while (end < this.buf.length && this.buf[end] !== 0) end++;
    return this.buf.toString('utf8', at, end);
  }
  str(off: number, len: number): string {
    const at = off - this.base;
    return this.buf.toString('utf8', Math.max(0, at), Math.min(this.buf.length, at + len));
  }
}

/**
 * An ELF file, read in the parts rbtrace needs (never whole: a binary with
 * debug info can be hundreds of MB), with positioned reads on a file opened
 * by procfiles.ts.
 */
export class ElfFile {
  readonly sections: ElfSection[] = [];
  private readonly segments: Segment[] = [];
  private symbolCache?: ElfSymbol[];
  private readonly parts = new Map<string, Bytes>();
  private bytesRead = 0;

  private constructor(readonly path: string, private readonly file: BinaryFile) {
    this.parseHeaders();
  }

  /**
   * Open and parse the headers; a one-line RbtraceError if it is not an
   * ELF64 LE file. A path is opened as procfiles.ts opens files: regular
   * files only, never blocking.
   */
  static open(file: string | BinaryFile): ElfFile {
    const bin = typeof file === 'string' ? openFile(file) : file;
    return new ElfFile(bin.name, bin);
  }

  /** Bytes [off, off+len) of the file (cut at its end), counted against MAX_ELF_READ_BYTES. */
  private read(off: number, len: number): Bytes {
    const key = `${off}:${len}`;
    const cached = this.parts.get(key);
    if (cached) return cached;
    const n = Math.max(0, Math.min(len, this.file.size - off));
    this.bytesRead += n;
    if (this.bytesRead > MAX_ELF_READ_BYTES) {
      throw new RbtraceError(`${this.path}: its headers, symbol tables and notes are more than rbtrace reads (${MAX_ELF_READ_BYTES / 1048576} MiB)`,
        { hint: 'give a binary with smaller symbol tables (debug info split off)' });
    }
    let buf: Buffer;
    try {
      buf = this.file.readAt(off, n);
    } catch (err) {
      throw new RbtraceError(`cannot read ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { hint: 'check the path and permissions' });
    }
    const bytes = new Bytes(buf, off);
    this.parts.set(key, bytes);
    return bytes;
  }

  private parseHeaders(): void {
    const h = this.read(0, 64);
    if (!h.has(0, 64) || h.buf.readUInt32BE(0) !== 0x7f454c46) {
      throw new RbtraceError(`${this.path} is not an ELF file`, { hint: 'give a compiled program or shared library' });
    }
    if (h.u8(4) !== 2 || h.u8(5) !== 1) {
      throw new RbtraceError(`${this.path}: only 64-bit little-endian ELF files are supported`);
    }
    const phoff = h.u64(0x20);
    const shoff = h.u64(0x28);
    const phentsize = h.u16(0x36);
    const phnum = h.u16(0x38);
    const shentsize = h.u16(0x3a);
    const shnum = h.u16(0x3c);
    const shstrndx = h.u16(0x3e);
    const ph = this.read(phoff, phnum * phentsize);
    for (let i = 0; i < phnum; i++) {
      const o = phoff + i * phentsize;
      if (phentsize < 56 || !ph.has(o, 56)) break;
      if (ph.u32(o) !== PT_LOAD) continue;
      this.segments.push({ flags: ph.u32(o + 4), offset: ph.u64(o + 8), vaddr: ph.u64(o + 16), filesz: ph.u64(o + 32) });
    }
    const sh = this.read(shoff, shnum * shentsize);
    const raw: (ElfSection & { nameOff: number })[] = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      if (shentsize < 64 || !sh.has(o, 64)) break;
      raw.push({
        nameOff: sh.u32(o),
        name: '',
        type: sh.u32(o + 4),
        addr: sh.u64(o + 16),
        offset: sh.u64(o + 24),
        size: sh.u64(o + 32),
        link: sh.u32(o + 40),
        entsize: sh.u64(o + 56),
      });
    }
    const strtab = raw[shstrndx];
    const names = strtab ? this.read(strtab.offset, strtab.size) : undefined;
    for (const s of raw) {
      s.name = names ? names.cstr(strtab.offset + s.nameOff) : '';
      const { nameOff: _, ...section } = s;
      this.sections.push(section);
    }
  }

  /** A section's bytes. */
  private contents(s: ElfSection): Bytes {
    return this.read(s.offset, s.size);
  }

  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** Every symbol of .symtab and .dynsym (a stripped file has only the latter). */
  symbols(): ElfSymbol[] {
    if (this.symbolCache) return this.symbolCache;
    const tables = this.sections.filter((s) => (s.type === SHT_SYMTAB || s.type === SHT_DYNSYM) && this.sections[s.link]);
    const count = tables.reduce((a, s) => a + Math.floor(s.size / 24), 0);
    if (count > MAX_ELF_SYMBOLS) {
      throw new RbtraceError(`${this.path} has ${count} symbols, more than rbtrace reads (${MAX_ELF_SYMBOLS})`,
        { hint: 'give a binary with fewer symbols (e.g. stripped of local ones)' });
    }
    const out: ElfSymbol[] = [];
    for (const s of tables) {
      const strSec = this.sections[s.link];
      const data = this.contents(s);
      const strs = this.contents(strSec);
      const n = Math.floor(s.size / 24);
      for (let i = 1; i < n; i++) {
        const o = s.offset + i * 24;
        if (!data.has(o, 24)) break;
        const info = data.u8(o + 4);
        out.push({
          name: strs.cstr(strSec.offset + data.u32(o)),
          type: info & 0xf,
          bind: info >> 4,
          shndx: data.u16(o + 6),
          value: data.u64(o + 8),
          size: data.u64(o + 16),
          table: s.type === SHT_SYMTAB ? '.symtab' : '.dynsym',
        });
      }
    }
    this.symbolCache = out;
    return out;
  }

  /** Functions defined in this file (not imports), one per address. */
  functions(): ElfSymbol[] {
    return this.symbols().filter((s) => (s.type === STT_FUNC || s.type === STT_GNU_IFUNC) && s.shndx !== 0 && s.value !== 0);
  }

  /** Does this file define function `name` (raw symbol name, version suffix ignored)? */
  definesFunction(name: string): boolean {
    return this.functions().some((s) => stripVersion(s.name) === name);
  }

  /** File offset of a virtual address (what uprobes attach to), via the PT_LOAD that holds it. */
  fileOffset(vaddr: number): number | undefined {
    for (const seg of this.segments) {
      if (vaddr >= seg.vaddr && vaddr < seg.vaddr + seg.filesz) return vaddr - seg.vaddr + seg.offset;
    }
    return undefined;
  }

  /** DT_NEEDED entries: the shared libraries this file links. */
  needed(): string[] {
    const dyn = this.sections.find((s) => s.type === SHT_DYNAMIC);
    if (!dyn) return [];
    const strSec = this.sections[dyn.link];
    if (!strSec) return [];
    const data = this.contents(dyn);
    const strs = this.contents(strSec);
    const out: string[] = [];
    for (let o = dyn.offset; o + 16 <= dyn.offset + dyn.size && data.has(o, 16); o += 16) {
      const tag = data.u64(o);
      if (tag === 0) break;
      if (tag === DT_NEEDED) out.push(strs.cstr(strSec.offset + data.u64(o + 8)));
    }
    return out;
  }

  /**
   * USDT probes from .note.stapsdt. Addresses are as recorded in the note;
   * libbpf does the prelink/.stapsdt.base adjustment itself when attaching.
   */
  sdtNotes(): SdtNote[] {
    const out: SdtNote[] = [];
    for (const s of this.sections) {
      if (s.type !== SHT_NOTE || s.name !== '.note.stapsdt') continue;
      const d = this.contents(s);
      let o = s.offset;
      const end = s.offset + s.size;
      while (o + 12 <= end && d.has(o, 12)) {
        const namesz = d.u32(o);
        const descsz = d.u32(o + 4);
        const type = d.u32(o + 8);
        const nameAt = o + 12;
        const descAt = nameAt + align4(namesz);
        const owner = d.str(nameAt, Math.max(0, namesz - 1));
        if (owner === 'stapsdt' && type === 3 && descsz >= 24 && d.has(descAt, 24)) {
          const provider = d.cstr(descAt + 24);
          const name = d.cstr(descAt + 24 + Buffer.byteLength(provider) + 1);
          const args = d.cstr(descAt + 24 + Buffer.byteLength(provider) + Buffer.byteLength(name) + 2);
          out.push({ provider, name, pc: d.u64(descAt), semaphore: d.u64(descAt + 16), args });
        }
        o = descAt + align4(descsz);
      }
    }
    return out;
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** 'memcpy@@GLIBC_2.14' -> 'memcpy' */
export function stripVersion(name: string): string {
  const at = name.indexOf('@');
  return at > 0 ? name.slice(0, at) : name;
}
