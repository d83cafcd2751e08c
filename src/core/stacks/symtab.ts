// Function symbols of one ELF file, sorted for address lookup, cached per
// build id (the same library in two containers, or replaced by an identical
// copy, is read once) and per device+inode (a file without a build id).
//
// Symbols come from the file's .symtab and .dynsym (src/core/elf/elf.ts) and,
// when /usr/lib/debug/.build-id/xx/yyyy.debug exists for its build id (in
// the process's root first, then the host's), from that file's .symtab too:
// Debian's -dbg packages put the full symbol tables of stripped libraries
// there (libc's static functions, for one).
import { ElfFile, stripVersion } from '../elf/elf.js';
import { demangle } from '../elf/demangle.js';
import { openFile, type BinaryFile } from '../linux/procfiles.js';

const PT_LOAD = 1;
const SHT_NOTE = 7;
const NT_GNU_BUILD_ID = 3;

const STB_GLOBAL = 1;
const STB_WEAK = 2;

/** What a table is built from (ElfSymbol's fields it uses). */
export interface RawSymbol {
  name: string;
  value: number;
  size: number;
  bind: number;
}

interface Load {
  vaddr: number;
  offset: number;
  filesz: number;
}

export interface SymbolHit {
  /** Demangled when mangled (Rust, C++), else the raw name without @VERSION. */
  name: string;
  /** The raw symbol when it was demangled. */
  symbol?: string;
  /** Distance from the function's start. */
  offset: number;
}

export class SymbolTable {
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly raw: string[];
  private readonly pretty: (SymbolHit | undefined)[];

  constructor(
    /** Hex build id, or undefined. */
    readonly buildId: string | undefined,
    private readonly loads: Load[],
    symbols: RawSymbol[],
    /** Where symbols came from, for -v and tests. */
    readonly sources: string[],
  ) {
    // One name per address. glibc has several (__GI___getpid, __getpid,
    // getpid): a global name over a weak one over a local one (the exported
    // name is the one users know), a sized symbol over a zero-size label,
    // else the first seen.
    const byAddr = new Map<number, RawSymbol>();
    const rank = (s: RawSymbol) => (s.size > 0 ? 0 : 4) + (s.bind === STB_GLOBAL ? 0 : s.bind === STB_WEAK ? 1 : 2);
    for (const s of symbols) {
      const had = byAddr.get(s.value);
      if (!had || rank(s) < rank(had)) byAddr.set(s.value, s);
    }
    const sorted: RawSymbol[] = [...byAddr.values()].sort((a, b) => a.value - b.value);
    this.starts = new Float64Array(sorted.length);
    this.ends = new Float64Array(sorted.length);
    this.raw = new Array(sorted.length);
    this.pretty = new Array(sorted.length);
    sorted.forEach((s, i) => {
      this.starts[i] = s.value;
      // A symbol without a size (assembly) reaches the next one.
      this.ends[i] = s.size > 0 ? s.value + s.size : (sorted[i + 1]?.value ?? Infinity);
      this.raw[i] = s.name;
    });
  }

  get size(): number {
    return this.starts.length;
  }

  /** The link-time address of file offset `off` (through the PT_LOAD holding it). */
  addressOf(off: number): number | undefined {
    for (const l of this.loads) {
      if (off >= l.offset && off < l.offset + l.filesz) return off - l.offset + l.vaddr;
    }
    return undefined;
  }

  /** The function holding link-time address `vaddr`. */
  lookup(vaddr: number): SymbolHit | undefined {
    const a = this.starts;
    let lo = 0;
    let hi = a.length - 1;
    if (hi < 0 || vaddr < a[0]) return undefined;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (a[mid] <= vaddr) lo = mid;
      else hi = mid - 1;
    }
    if (vaddr >= this.ends[lo]) return undefined; // in a gap between functions
    let hit = this.pretty[lo];
    if (!hit) {
      const raw = this.raw[lo];
      const d = demangle(raw);
      hit = this.pretty[lo] = d ? { name: d, symbol: raw, offset: 0 } : { name: stripVersion(raw), offset: 0 };
    }
    return { ...hit, offset: vaddr - a[lo] };
  }
}

/** PT_LOAD segments (the file-offset-to-address map), read from the program headers. */
function readLoads(file: BinaryFile): Load[] {
  const h = file.readAt(0, 64);
  if (h.length < 64) return [];
  const phoff = Number(h.readBigUInt64LE(0x20));
  const phentsize = h.readUInt16LE(0x36);
  const phnum = h.readUInt16LE(0x38);
  if (phentsize < 56 || phnum > 4096) return [];
  const ph = file.readAt(phoff, phnum * phentsize);
  const out: Load[] = [];
  for (let i = 0; i < phnum && (i + 1) * phentsize <= ph.length; i++) {
    const o = i * phentsize;
    if (ph.readUInt32LE(o) !== PT_LOAD) continue;
    out.push({ offset: Number(ph.readBigUInt64LE(o + 8)), vaddr: Number(ph.readBigUInt64LE(o + 16)), filesz: Number(ph.readBigUInt64LE(o + 32)) });
  }
  return out;
}

/** The GNU build id (hex) from .note.gnu.build-id, or undefined. */
export function readBuildId(elf: ElfFile, file: BinaryFile): string | undefined {
  const sec = elf.sections.find((s) => s.type === SHT_NOTE && s.name === '.note.gnu.build-id');
  if (!sec || sec.size < 16 || sec.size > 4096) return undefined;
  const d = file.readAt(sec.offset, sec.size);
  let o = 0;
  while (o + 12 <= d.length) {
    const namesz = d.readUInt32LE(o);
    const descsz = d.readUInt32LE(o + 4);
    const type = d.readUInt32LE(o + 8);
    const desc = o + 12 + ((namesz + 3) & ~3);
    if (type === NT_GNU_BUILD_ID && d.toString('latin1', o + 12, o + 12 + 3) === 'GNU' && desc + descsz <= d.length) {
      return d.subarray(desc, desc + descsz).toString('hex');
    }
    o = desc + ((descsz + 3) & ~3);
  }
  return undefined;
}

const FUNC_TYPES = new Set([2, 10]); // STT_FUNC, STT_GNU_IFUNC

function functionsOf(elf: ElfFile): RawSymbol[] {
  return elf.functions().filter((s) => FUNC_TYPES.has(s.type));
}

const byBuildId = new Map<string, SymbolTable>();
const byInode = new Map<string, SymbolTable>();

/** Directories searched for <root>/usr/lib/debug/.build-id (tests add their own). */
export const DEBUG_DIRS = ['/usr/lib/debug'];

/**
 * The symbol table of `file` (opened by procfiles.ts: checked, in the
 * process's mount namespace). `root` is the process's /proc/PID/root, to
 * look for debuginfo in its filesystem first. Throws RbtraceError when the
 * file is not ELF.
 */
export function symbolTableFor(file: BinaryFile, root?: string, debugDirs: readonly string[] = DEBUG_DIRS): SymbolTable {
  const inodeKey = `${file.dev}:${file.ino}`;
  const known = byInode.get(inodeKey);
  if (known) return known;
  const elf = ElfFile.open(file);
  const buildId = readBuildId(elf, file);
  let table = buildId ? byBuildId.get(buildId) : undefined;
  if (!table) {
    let symbols = functionsOf(elf);
    const sources = [file.name];
    const debug = buildId ? findDebugFile(buildId, root, debugDirs) : undefined;
    if (debug) {
      try {
        // Its own symbols first: a debug file has every local function.
        symbols = functionsOf(ElfFile.open(debug)).concat(symbols);
        sources.push(debug.name);
      } catch {
        // not ELF, or too large: the file's own tables are still there
      }
    }
    table = new SymbolTable(buildId, readLoads(file), symbols, sources);
    if (buildId) byBuildId.set(buildId, table);
  }
  byInode.set(inodeKey, table);
  return table;
}

function findDebugFile(buildId: string, root: string | undefined, debugDirs: readonly string[]): BinaryFile | undefined {
  const rel = `.build-id/${buildId.slice(0, 2)}/${buildId.slice(2)}.debug`;
  const candidates = debugDirs.flatMap((d) => (root ? [`${root}${d}/${rel}`, `${d}/${rel}`] : [`${d}/${rel}`]));
  for (const path of candidates) {
    try {
      return openFile(path, path.replace(/^\/proc\/\d+\/root/, ''));
    } catch {
      // absent: the next
    }
  }
  return undefined;
}

/** Forget every cached table (tests; a long-running exporter's periodic trim). */
export function clearSymbolTables(): void {
  byBuildId.clear();
  byInode.clear();
}
