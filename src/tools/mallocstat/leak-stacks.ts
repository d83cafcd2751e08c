// mallocstat --leaks: the names of the stacks that allocated blocks not
// freed. A stack is named from its process's mappings (src/core/stacks'
// Symbolizer, one per process image); frames it cannot name (the process
// exited before its mappings were read) are named through the build ids and
// file offsets the kernel gave when the stack was first seen (ms_stack_event).
import { resolve } from 'node:path';
import { Symbolizer, symbolTableFor, type Frame, type StackMap, type Stack, type SymbolTable } from '../../core/stacks/index.js';
import type { Region } from '../../core/stacks/maps.js';
import { ElfFile } from '../../core/elf/elf.js';
import { openFile } from '../../core/linux/procfiles.js';
import { resolveCommand, systemLibrary } from '../../core/linux/process.js';
import { DEFINES } from '../../generated/mallocstat.js';

/** A frame as the kernel named it when the stack was first seen: build id + file offset (status 1), or only the address. */
export interface BuildFrame { buildId?: string; offset: number }

export class LeakStacks {
  /** One per process image: an exec makes a new one (its addresses mean other code). */
  private readonly symbolizers = new Map<number, Symbolizer>();
  /** pid:stackid -> symbolized stack (the same frames until the process execs). */
  private readonly named = new Map<string, Stack>();
  /** pid:stackid -> its frames by build id (ms_stack_event), for processes gone before their mappings were read. */
  private readonly built = new Map<string, BuildFrame[]>();
  /** build id -> symbol table, from the files the target is known to use (built on first need). */
  private byBuildId?: Map<string, { table: SymbolTable; path: string }>;

  /** `command`: -- CMD's argv[0], whose executable and libraries are where build ids are looked for. */
  constructor(private readonly stacks: StackMap, private readonly command?: string) {}

  /** Read `pid`'s mappings now, while it runs: its frames are named at the end, maybe after it exited. */
  notePid(pid: number): void {
    this.symbolizerOf(pid).notePid(pid);
  }

  /** The mapping of `pid` holding `addr`, from its image's snapshot (--unwind dwarf walks stack copies with it). */
  region(pid: number, addr: number): Region | undefined {
    return this.symbolizerOf(pid).region(pid, addr);
  }

  /** A stack walked from a copy (--unwind dwarf): `walk` numbers the distinct walks; `complete`: it reached the outermost frame. */
  stackOfWalk(pid: number, walk: number, pcs: readonly number[], complete: boolean): Stack {
    const key = `${pid}:w${walk}`;
    let s = this.named.get(key);
    if (!s) {
      s = { frames: this.symbolizerOf(pid).symbolize(pid, pcs.map(BigInt)).frames, truncated: !complete };
      this.named.set(key, s);
    }
    return s;
  }

  private symbolizerOf(pid: number): Symbolizer {
    let s = this.symbolizers.get(pid);
    if (!s) this.symbolizers.set(pid, (s = new Symbolizer()));
    return s;
  }

  /** The stack `stackid` of `pid`, as the kernel named its frames when first seen. */
  noteBuilt(pid: number, stackid: number, frames: BuildFrame[]): void {
    this.built.set(`${pid}:${stackid}`, frames);
  }

  /** A process's first allocation (or first since an exec): an exec is a new image, its stacks named afresh. */
  noteProcess(pid: number): void {
    if (this.symbolizers.has(pid)) {
      // An exec: a new image. Its older blocks are dropped (read()), its new stacks named afresh.
      this.symbolizers.delete(pid);
      for (const k of [...this.named.keys()]) if (k.startsWith(`${pid}:`)) this.named.delete(k);
      for (const k of [...this.built.keys()]) if (k.startsWith(`${pid}:`)) this.built.delete(k);
    }
    this.notePid(pid);
  }

  stackOf(pid: number, stackid: number): Stack {
    const key = `${pid}:${stackid}`;
    let s = this.named.get(key);
    if (!s) {
      const addrs = this.stacks.addresses(stackid);
      s = addrs.length ? this.symbolizerOf(pid).symbolize(pid, addrs) : { frames: [], truncated: false };
      const built = this.built.get(key);
      if (built && s.frames.some((f) => f.name === '[unknown]')) s = this.byBuild(s, built);
      this.named.set(key, s);
    }
    return s;
  }

  /**
   * Frames the mappings could not name (the process exited before they were
   * read), named through the build ids the kernel gave when the stack was
   * first seen, in the files the target is known to use.
   */
  private byBuild(s: Stack, built: BuildFrame[]): Stack {
    const frames = s.frames.map((f, i) => {
      const b = built[i];
      if (f.name !== '[unknown]' || !b?.buildId) return f;
      const hit = this.tableOf(b.buildId);
      if (!hit) return f;
      const caller = i > 0; // a return address: look one byte back, inside the call
      const vaddr = hit.table.addressOf(b.offset - (caller ? 1 : 0));
      const sym = vaddr === undefined ? undefined : hit.table.lookup(vaddr);
      if (!sym) return { ...f, name: `[${hit.path.split('/').pop()}]`, module: hit.path };
      return { name: sym.name, ...(sym.symbol ? { symbol: sym.symbol } : {}), module: hit.path, addr: f.addr, offset: sym.offset + (caller ? 1 : 0), kernel: false } as Frame;
    });
    const last = frames.at(-1);
    return { frames, truncated: frames.length <= 2 || last?.name === '[unknown]' || frames.length >= DEFINES.MS_STACK_FRAMES };
  }

  private tableOf(buildId: string): { table: SymbolTable; path: string } | undefined {
    if (!this.byBuildId) {
      this.byBuildId = new Map();
      const found = this.command ? resolveCommand(this.command) : undefined;
      const exe = found ? resolve(found) : undefined;
      const paths = new Set<string>();
      if (exe) {
        paths.add(exe);
        try {
          for (const n of ElfFile.open(exe).needed()) {
            const lib = systemLibrary(n);
            if (lib) paths.add(lib);
          }
        } catch {
          // a script: its interpreter's files are not known here
        }
      }
      const libc = systemLibrary('c');
      if (libc) paths.add(libc);
      for (const path of paths) {
        try {
          const table = symbolTableFor(openFile(path));
          if (table.buildId) this.byBuildId.set(table.buildId, { table, path });
        } catch {
          // unreadable: its frames stay [unknown]
        }
      }
    }
    return this.byBuildId.get(buildId);
  }
}
