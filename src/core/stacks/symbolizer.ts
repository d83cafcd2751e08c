// Addresses to names: kernel frames through /proc/kallsyms, user frames
// through the process's mappings and the ELF symbols of the mapped files.
//
// A process can exit between its sample and the symbolization (a profile is
// symbolized at the end of the run): call notePid() when a pid is first
// seen, which snapshots /proc/PID/maps; its libraries are then found later
// by path (checked against the mapped device and inode) as long as they are
// on disk. An address outside every known mapping re-reads the maps (at most
// every REREAD_MS per process): a new dlopen, the exec of a -p target, or a
// process first sampled in its dynamic loader, before libc was mapped.
import { basename } from 'node:path';
import { existsSync } from 'node:fs';
import { openMapping } from '../linux/procfiles.js';
import { KernelSymbols } from './kallsyms.js';
import { findRegion, readRegions, type Region } from './maps.js';
import { DEBUG_DIRS, symbolTableFor, type SymbolTable } from './symtab.js';

export interface Frame {
  /** Function name, demangled; "[libfoo.so]" when the file has no symbol for it, "[unknown]" outside any mapping. */
  name: string;
  /** The raw (mangled) symbol, when the name was demangled. */
  symbol?: string;
  /** The file (as the process names it), "[anon]" memory, or the kernel ("kernel" or a module name). */
  module?: string;
  /** The address sampled (a return address for callers). */
  addr: bigint;
  /** Distance from the function's start, when the function is known. */
  offset?: number;
  kernel: boolean;
}

export interface Stack {
  /** Innermost first: kernel frames (if any), then user frames. */
  frames: Frame[];
  /**
   * The user stack is probably cut short: frame pointers missing somewhere
   * (≤ 2 user frames, or the outermost is outside every mapping), or it hit
   * the depth limit.
   */
  truncated: boolean;
}

export interface SymbolizerOptions {
  /** Where to look for .build-id debuginfo (default /usr/lib/debug). */
  debugDirs?: readonly string[];
  /** /proc/kallsyms text (tests). */
  kallsyms?: string;
  /** Frames kept per stack by the BPF side (rbtrace_stacks.bpf.h's RBTRACE_STACK_DEPTH). */
  maxDepth?: number;
}

interface ProcessInfo {
  regions: Region[];
  readAt: number;
  alive: boolean;
}

// profile --unwind dwarf unwinds each sample as it arrives, with the maps as
// they are then: a process whose maps were read during its execve, or in
// ld.so before libc was mapped (seconds under qemu TCG), has samples cut at
// the first frame outside that snapshot until the next read. With 1 s, the
// previous value, 6.12 under TCG once cut 18 of 184 and 72 of 224 samples
// at __libc_start_call_main (test/vm/guest/profile-unwind.check.ts now
// checks -- CMD: 214/214 with 1 s and 243/243 with 100 ms in two runs, so
// the window is rare; 100 ms bounds it). A miss that stays a miss (a wild
// frame-pointer value) costs one maps read per 100 ms per process.
const REREAD_MS = 100;

// A process is noted at its first block or sample, which can come while
// ld.so is still mapping its libraries (a preemption in the loader). A tool
// that names frames only at the end (offcputime, profile's fp stacks) then
// finds libc's addresses outside that snapshot, and cannot read the maps
// again once the process has exited: CI once showed a python's
// clock_nanosleep as `[unknown]`, as this would. So the maps of a noted
// process are read once more SETTLE_MS later, while it still runs.
const SETTLE_MS = 100;

export class Symbolizer {
  private kernelSyms?: KernelSymbols;
  private readonly procs = new Map<number, ProcessInfo>();
  /** dev:ino -> table, or null when the file could not be read. */
  private readonly tables = new Map<string, SymbolTable | null>();
  private readonly debugDirs: readonly string[];
  private readonly maxDepth: number;
  /** Files that could not be opened or parsed, with why (for -v). */
  readonly failures = new Map<string, string>();
  /** Noted pids whose maps are read once more SETTLE_MS after they were noted (pid -> when). */
  private readonly settling = new Map<number, number>();
  private settleTimer?: NodeJS.Timeout;

  constructor(private readonly opts: SymbolizerOptions = {}) {
    this.debugDirs = opts.debugDirs ?? DEBUG_DIRS;
    this.maxDepth = opts.maxDepth ?? 127;
  }

  /** The kernel's symbols (read on first use). */
  get kernelSymbols(): KernelSymbols {
    return (this.kernelSyms ??= new KernelSymbols(this.opts.kallsyms));
  }

  /** Snapshot the mappings of `pid` if not done yet: call it as soon as a pid is seen. */
  notePid(pid: number, again = false): void {
    // again: the process has exec'd since it was first noted (a new image, new mappings).
    if (pid > 0 && (again || !this.procs.has(pid))) {
      if (this.refresh(pid).alive) this.settleLater(pid);
    }
  }

  private settleLater(pid: number): void {
    this.settling.set(pid, Date.now());
    if (!this.settleTimer) this.armSettle(SETTLE_MS);
  }

  private armSettle(ms: number): void {
    this.settleTimer = setTimeout(() => this.settle(), ms);
    this.settleTimer.unref(); // never what keeps rbtrace running
  }

  private settle(): void {
    this.settleTimer = undefined;
    const now = Date.now();
    let next = Infinity;
    for (const [pid, at] of this.settling) {
      const due = at + SETTLE_MS - now;
      if (due > 0) {
        next = Math.min(next, due);
        continue;
      }
      this.settling.delete(pid);
      if (this.procs.get(pid)?.alive) this.refresh(pid);
    }
    if (next !== Infinity) this.armSettle(next);
  }

  private refresh(pid: number): ProcessInfo {
    const regions = readRegions(pid);
    const old = this.procs.get(pid);
    // Unreadable maps of a live process (read during its execve, measured with `-- CMD`) are
    // tried again later: only a process gone from /proc keeps its last snapshot for good.
    // Empty maps are a zombie's (exited, not yet reaped; a live process always has mappings):
    // as unreadable, or the snapshot its queued samples are still walked and named with would
    // be lost (seen on arm64 under TCG: a ruby's last 210 samples, read from the ring buffer
    // after its exit, all `[unknown]`).
    const info: ProcessInfo = regions?.length
      ? { regions, readAt: Date.now(), alive: true }
      : { regions: old?.regions ?? [], readAt: Date.now(), alive: existsSync(`/proc/${pid}`) };
    this.procs.set(pid, info);
    return info;
  }

  /** The mapping of `pid` holding `addr` (snapshot, re-read as userFrame does): src/core/unwind/ walks stacks with it. */
  region(pid: number, addr: number): Region | undefined {
    return this.regionOf(pid, addr);
  }

  private regionOf(pid: number, addr: number): Region | undefined {
    let info = this.procs.get(pid) ?? this.refresh(pid);
    let r = findRegion(info.regions, addr);
    if (!r && info.alive && Date.now() - info.readAt >= REREAD_MS) {
      info = this.refresh(pid);
      r = findRegion(info.regions, addr);
    }
    return r;
  }

  private tableOf(pid: number, r: Region): SymbolTable | undefined {
    const key = `${r.major}:${r.minor}:${r.inode}`;
    let t = this.tables.get(key);
    if (t === undefined) {
      try {
        const file = openMapping(pid, r);
        t = symbolTableFor(file, `/proc/${pid}/root`, this.debugDirs);
      } catch (err) {
        this.failures.set(r.path, (err as Error).message);
        t = null;
      }
      this.tables.set(key, t);
    }
    return t ?? undefined;
  }

  /** One user frame of `pid`. `caller`: a return address (looked up one byte back, inside the call). */
  userFrame(pid: number, addr: bigint, caller = false): Frame {
    const a = Number(addr);
    const r = this.regionOf(pid, a);
    if (!r) return { name: '[unknown]', addr, kernel: false };
    if (!r.file) return { name: r.path ? `[${r.path.replace(/^\[|\]$/g, '')}]` : '[anon]', module: r.path || '[anon]', addr, kernel: false };
    const module = r.path + (r.deleted ? ' (deleted)' : '');
    const t = this.tableOf(pid, r);
    const vaddr = t?.addressOf(a - r.start + r.offset - (caller ? 1 : 0));
    const hit = vaddr === undefined ? undefined : t!.lookup(vaddr);
    if (!hit) return { name: `[${basename(r.path)}]`, module, addr, kernel: false };
    return { name: hit.name, ...(hit.symbol ? { symbol: hit.symbol } : {}), module, addr, offset: hit.offset + (caller ? 1 : 0), kernel: false };
  }

  /** One kernel frame (`caller`: a return address, as for userFrame). */
  kernelFrame(addr: bigint, caller = false): Frame {
    const hit = this.kernelSymbols.lookup(caller ? addr - 1n : addr);
    if (!hit) return { name: '[kernel]', module: 'kernel', addr, kernel: true };
    return { name: hit.name, module: hit.module ?? 'kernel', addr, offset: Number(hit.offset) + (caller ? 1 : 0), kernel: true };
  }

  /**
   * A whole stack, innermost first. `user` and `kernel` are the raw
   * addresses as the BPF stack map holds them (innermost first, zeros past
   * the end already dropped); either may be empty.
   */
  symbolize(pid: number, user: readonly bigint[], kernel: readonly bigint[] = []): Stack {
    const frames: Frame[] = [];
    // The kernel's first frame is where the sample hit; the rest are return addresses.
    kernel.forEach((a, i) => frames.push(this.kernelFrame(a, i > 0)));
    let outside = false;
    user.forEach((a, i) => {
      const f = this.userFrame(pid, a, i > 0);
      if (i === user.length - 1 && f.name === '[unknown]') outside = true;
      frames.push(f);
    });
    const truncated = user.length > 0 && (user.length <= 2 || outside || user.length >= this.maxDepth);
    return { frames, truncated };
  }

  /** Files whose symbols were read, for -v. */
  get tablesRead(): number {
    return [...this.tables.values()].filter(Boolean).length;
  }
}
