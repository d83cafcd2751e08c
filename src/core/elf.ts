// A small ELF reader for user-space probes: symbols (.symtab and .dynsym),
// file offsets of functions (what a uprobe attaches to), DT_NEEDED, and
// SystemTap SDT notes (.note.stapsdt, the USDT probes). Plus demangling of
// Rust (legacy and v0) and Itanium C++ names, far enough to give qualified
// names ('app::parse', 'ns::Class::method') so users can name functions as
// they wrote them: libbpf 1.1 resolves only raw symbol names.
//
// Only what rbtrace needs: ELF64 little-endian (x86_64, aarch64, riscv64).
// No external tools (nm, readelf) at run time.
import { RbtraceError } from './errors.js';
import { BinaryFile, openFile } from './procfiles.js';

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

// ---- demangling ----------------------------------------------------------------

/**
 * A readable, qualified name for a mangled symbol, or undefined if it is not
 * mangled (or not in a form understood here). Rust legacy (`_ZN...17h<hash>E`,
 * hash dropped), Rust v0 (`_R...`, paths only: generic arguments and crate
 * disambiguators are left out) and Itanium C++ (`_Z...`: the qualified name,
 * without parameter types or template arguments).
 */
export function demangle(sym: string): string | undefined {
  const name = stripVersion(sym).replace(/\.(llvm|lto_priv|constprop|isra|part|cold)\.[\w.]*$/, '');
  try {
    if (name.startsWith('_R')) return demangleRustV0(name.slice(2));
    if (name.startsWith('_ZN') || name.startsWith('__ZN')) {
      const legacy = demangleRustLegacy(name.replace(/^__/, '_'));
      if (legacy) return legacy;
    }
    if (name.startsWith('_Z')) return demangleItanium(name.slice(2));
  } catch {
    return undefined;
  }
  return undefined;
}

const RUST_ESCAPES: Record<string, string> = {
  SP: '@', BP: '*', RF: '&', LT: '<', GT: '>', LP: '(', RP: ')', C: ',',
};

function rustLegacyUnescape(s: string): string {
  let out = s.replace(/\$([A-Z]{1,2}|u[0-9a-f]+)\$/g, (m, code: string) => {
    if (code.startsWith('u')) return String.fromCodePoint(parseInt(code.slice(1), 16));
    return RUST_ESCAPES[code] ?? m;
  });
  out = out.replace(/\.\./g, '::');
  return out.startsWith('_$') ? out.slice(1) : out;
}

/** _ZN3app5parse17h0123456789abcdefE -> app::parse (only if the hash is there: else it is C++). */
function demangleRustLegacy(name: string): string | undefined {
  const parts = parseSourceNames(name, 3);
  if (!parts || parts.end >= name.length || name[parts.end] !== 'E') return undefined;
  const last = parts.names.at(-1);
  if (!last || !/^h[0-9a-f]{16}$/.test(last)) return undefined;
  return parts.names.slice(0, -1).map(rustLegacyUnescape).join('::');
}

/** <len><ident><len><ident>... starting at `at`. */
function parseSourceNames(s: string, at: number): { names: string[]; end: number } | undefined {
  const names: string[] = [];
  let i = at;
  while (i < s.length && s[i] >= '0' && s[i] <= '9') {
    let j = i;
    while (s[j] >= '0' && s[j] <= '9') j++;
    const len = Number(s.slice(i, j));
    names.push(s.slice(j, j + len));
    i = j + len;
  }
  return names.length ? { names, end: i } : undefined;
}

/** Rust v0's one-letter basic types (RFC 2603). */
const RUST_BASIC_TYPES: Record<string, string> = {
  a: 'i8', b: 'bool', c: 'char', d: 'f64', e: 'str', f: 'f32', h: 'u8', i: 'isize', j: 'usize', l: 'i32', m: 'u32',
  n: 'i128', o: 'u128', s: 'i16', t: 'u16', u: '()', v: '...', x: 'i64', y: 'u64', z: '!', p: '_',
};

/** Rust v0 (RFC 2603), paths only. */
function demangleRustV0(s: string): string | undefined {
  let i = 0;
  if (s[i] >= '0' && s[i] <= '9') { // encoding version
    while (s[i] >= '0' && s[i] <= '9') i++;
  }
  const base62 = (): number => {
    if (s[i] === '_') { i++; return 0; }
    let v = 0;
    while (i < s.length && s[i] !== '_') {
      const c = s[i++];
      const d = c >= '0' && c <= '9' ? c.charCodeAt(0) - 48 : c >= 'a' && c <= 'z' ? c.charCodeAt(0) - 87 : c.charCodeAt(0) - 29;
      v = v * 62 + d;
    }
    i++;
    return v + 1;
  };
  const binder = () => {
    if (s[i] === 'G') { i++; base62(); }
  };
  const disambiguator = () => {
    if (s[i] === 's') { i++; base62(); }
  };
  const ident = (): string => {
    disambiguator();
    const punycode = s[i] === 'u';
    if (punycode) i++;
    let j = i;
    while (s[j] >= '0' && s[j] <= '9') j++;
    const len = Number(s.slice(i, j));
    i = j;
    if (s[i] === '_') i++;
    const id = s.slice(i, i + len);
    i += len;
    return punycode ? id : id;
  };
  const path = (): string => {
    const tag = s[i++];
    switch (tag) {
      case 'C': return ident();                       // crate root
      case 'N': {                                     // nested: N <ns> <path> <ident>
        const ns = s[i++];
        const parent = path();
        const id = ident();
        if (ns >= 'A' && ns <= 'Z') return id ? `${parent}::{${ns === 'C' ? 'closure' : ns === 'S' ? 'shim' : ns}#${id}}` : `${parent}::{${ns === 'C' ? 'closure' : 'shim'}}`;
        return `${parent}::${id}`;
      }
      case 'M': { disambiguator(); path(); return type(); }   // inherent impl (after its module): the type's path
      case 'X': { disambiguator(); path(); const t = type(); const tr = path(); return `<${t} as ${tr}>`; }
      case 'Y': { const t = type(); const tr = path(); return `<${t} as ${tr}>`; }
      case 'I': {                                     // generic args: keep the path, drop the args
        const p = path();
        while (s[i] !== 'E' && i < s.length) genericArg();
        i++;
        return p;
      }
      case 'B': return backref(path, true);           // back reference to an earlier path
      default: throw new Error('v0: unknown path tag');
    }
  };
  const backref = <T>(parse: () => T, consumed = false): T => {
    if (!consumed) i++;
    const pos = base62();
    if (pos >= i) throw new Error('v0: forward back reference');
    const save = i;
    i = pos;
    const out = parse();
    i = save;
    return out;
  };
  const genericArg = (): void => {
    if (s[i] === 'L') { i++; base62(); return; }
    if (s[i] === 'K') { i++; constant(); return; }
    type();
  };
  const constant = (): void => {
    if (s[i] === 'p') { i++; return; }
    if (s[i] === 'B') { i++; base62(); return; }
    type();
    if (s[i] === 'n') i++;
    while (i < s.length && s[i] !== '_') i++;
    i++;
  };
  const type = (): string => {
    const c = s[i];
    const basic = RUST_BASIC_TYPES[c];
    if (basic) { i++; return basic; }
    switch (c) {
      case 'A': i++; type(); constant(); return '[_]';
      case 'S': i++; return `[${type()}]`;
      case 'T': { i++; const ts: string[] = []; while (s[i] !== 'E') ts.push(type()); i++; return `(${ts.join(', ')})`; }
      case 'R': case 'Q': i++; if (s[i] === 'L') { i++; base62(); } return `&${type()}`;
      case 'P': case 'O': i++; return `*${type()}`;
      case 'F': { // fn(args) -> ret: [G binder] [U] [K abi] {type} E type
        i++;
        binder();
        if (s[i] === 'U') i++;
        if (s[i] === 'K') { i++; if (s[i] === 'C') i++; else ident(); }
        const args: string[] = [];
        while (i < s.length && s[i] !== 'E') args.push(type());
        i++;
        return `fn(${args.join(', ')}) -> ${type()}`;
      }
      case 'D': { // dyn Trait + ...: [G binder] {path {p ident type}} E, then a lifetime
        i++;
        binder();
        const traits: string[] = [];
        while (i < s.length && s[i] !== 'E') {
          traits.push(path());
          while (s[i] === 'p') { i++; ident(); type(); }
        }
        i++;
        if (s[i] !== 'L') throw new Error('v0: dyn without lifetime');
        i++;
        base62();
        return `dyn ${traits.join(' + ')}`;
      }
      case 'B': i++; return backref(type, true);
      default: return path();
    }
  };
  const p = path();
  return p;
}

const CTOR_DTOR = /^(C[1-5]|D[0-5])/;
/** Itanium's abbreviations of std:: names (Sa, Sb, Ss, Si, So, Sd), as c++filt spells them. */
const STD_ABBREVIATIONS: Record<string, string[]> = {
  a: ['std', 'allocator'], b: ['std', 'basic_string'], s: ['std', 'string'],
  i: ['std', 'istream'], o: ['std', 'ostream'], d: ['std', 'iostream'],
};
const OPERATORS: Record<string, string> = {
  nw: 'new', na: 'new[]', dl: 'delete', da: 'delete[]', ps: '+', ng: '-', ad: '&', de: '*', co: '~', pl: '+', mi: '-',
  ml: '*', dv: '/', rm: '%', an: '&', or: '|', eo: '^', aS: '=', pL: '+=', mI: '-=', mL: '*=', dV: '/=', rM: '%=',
  aN: '&=', oR: '|=', eO: '^=', ls: '<<', rs: '>>', lS: '<<=', rS: '>>=', eq: '==', ne: '!=', lt: '<', gt: '>',
  le: '<=', ge: '>=', ss: '<=>', nt: '!', aa: '&&', oo: '||', pp: '++', mm: '--', cm: ',', pm: '->*', pt: '->',
  cl: '()', ix: '[]',
};

/**
 * Itanium C++: the qualified function name only (ns::Class::method), with
 * template arguments skipped, std:: for St, and constructors/destructors
 * named after their class. Enough to find a function by the name a user
 * types; parameter types (overloads) are not shown.
 */
function demangleItanium(s: string): string | undefined {
  let i = 0;
  const parts: string[] = [];
  const skipTemplateArgs = () => {
    // I ... E, balanced over the constructs that also end in E.
    let depth = 0;
    do {
      const c = s[i];
      if (c === undefined) throw new Error('unterminated template args');
      if (c >= '0' && c <= '9') {
        let j = i;
        while (s[j] >= '0' && s[j] <= '9') j++;
        i = j + Number(s.slice(i, j));
        continue;
      }
      if (c === 'I' || c === 'N' || c === 'L' || c === 'X' || (c === 'J')) depth++;
      else if (c === 'E') depth--;
      i++;
    } while (depth > 0);
  };
  const unqualified = (): boolean => {
    const c = s[i];
    if (c >= '0' && c <= '9') {
      const r = parseSourceNames(s, i)!;
      // one source name at a time
      let j = i;
      while (s[j] >= '0' && s[j] <= '9') j++;
      const len = Number(s.slice(i, j));
      parts.push(s.slice(j, j + len));
      i = j + len;
      void r;
      return true;
    }
    const m = CTOR_DTOR.exec(s.slice(i));
    if (m) {
      const cls = parts.at(-1) ?? '';
      parts.push(m[1][0] === 'D' ? `~${cls}` : cls);
      i += 2;
      return true;
    }
    if (c === 'L') { i++; return unqualified(); } // internal linkage
    const op = OPERATORS[s.slice(i, i + 2)];
    if (op) { parts.push(`operator${op}`); i += 2; return true; }
    return false;
  };
  if (s[i] === 'N') {
    i++;
    while ('rVKRO'.includes(s[i])) i++; // cv- and ref-qualifiers of a method
    while (i < s.length && s[i] !== 'E') {
      if (s.startsWith('St', i)) { parts.push('std'); i += 2; continue; }
      if (s[i] === 'S' && STD_ABBREVIATIONS[s[i + 1]]) { parts.push(...STD_ABBREVIATIONS[s[i + 1]]); i += 2; continue; }
      if (s[i] === 'S') { // substitution: a prefix seen before; approximate as nothing
        const end = s.indexOf('_', i);
        if (end < 0) return undefined; // malformed: never loop past the end
        i = end + 1;
        continue;
      }
      if (s[i] === 'I') { skipTemplateArgs(); continue; }
      if (s[i] === 'B') { i++; unqualified(); parts.pop(); continue; } // ABI tag
      if (!unqualified()) return undefined;
    }
    return parts.join('::');
  }
  if (s.startsWith('St', i)) { parts.push('std'); i += 2; }
  if (s[i] === 'Z') return undefined; // local entities: not needed
  if (!unqualified()) return undefined;
  return parts.join('::');
}

/** Strip what a user may add that symbol names do not carry: '(...)', a leading '::'. */
export function normalizeFunctionQuery(query: string): string {
  return query.trim().replace(/\(.*\)\s*(const)?$/, '').replace(/^::/, '');
}
