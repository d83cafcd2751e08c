// Time windows for USDT probes behind semaphores: the probes stay attached,
// and between windows their semaphores in the traced processes are lowered
// by rbtrace's share, so the program skips the probe sites (no trap at all)
// until the next window raises them again.
//
// Why: a USDT probe that fires at every allocation costs a trap (~5 us)
// whatever the BPF program does, so 1-in-N sampling in BPF cannot make
// rubyobjnew cheap (x126 on an allocation-heavy loop at 1 in 100). Detaching
// between windows does not work either: detaching 5 USDT probes took 1.1 s
// here (bench/rubyobjnew-window.mjs). A semaphore is two bytes in the
// process's memory: writing it through /proc/PID/mem takes microseconds.
//
// The kernel raises a semaphore by one per uprobe (probe site) it installs
// in a process, and lowers it by one when the uprobe goes; other tracers'
// uprobes on the same sites share ours (one uprobe per site), so the share
// removed is the number of sites rbtrace attached behind that semaphore.
// Everything is put back before the probes are detached (the kernel refuses
// to lower a semaphore below zero, and warns).
//
// The semaphores decide the cost, not the counts: a gate in the BPF object
// (rbtrace_window.bpf.h) is open exactly while a window is, and the programs
// count only then. A process the kernel has just put the probes in fires
// them until rbtrace next looks and lowers its semaphores; without the gate
// a ruby's boot was counted as if in a window.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { ElfFile, type SdtNote } from '../elf/elf.js';
import { fileKey, mappingKey, type BinaryFile } from '../linux/procfiles.js';
import { readRegions } from '../stacks/maps.js';
import type { Session } from '../session.js';
import type { BpfObject } from './object.js';
import type { BpfMap } from './maps.js';
import type { AnySkeleton, MapName } from '../skeleton/types.js';
import { Option } from 'commander';
import { UsageError } from '../errors.js';
import { integerParser } from '../parsers.js';

interface Semaphore {
  /** Its address in the process. */
  addr: number;
  /** rbtrace's share of its value: the probe sites attached behind it. */
  ours: number;
}

/** The widest span of semaphores read and written in one go. */
const MAX_SEMAPHORE_SPAN = 4096;

/** Semaphores read and written together, and the addresses they take up (2 bytes each). */
interface SemaphoreSpan {
  sems: Semaphore[];
  lo: number;
  bytes: number;
}

function spanOf(sems: Semaphore[]): SemaphoreSpan {
  const lo = Math.min(...sems.map((s) => s.addr));
  return { sems, lo, bytes: Math.max(...sems.map((s) => s.addr)) + 2 - lo };
}

/** The semaphores of `probes` in one process, and whether rbtrace's share is in them now. */
class ProcessSemaphores {
  private fd: number;
  private raised = true;
  /** One span for them all; should some build scatter them (they come from one binary's .probes), one each. */
  private readonly spans: SemaphoreSpan[];

  constructor(readonly pid: number, private readonly sems: Semaphore[]) {
    this.fd = openSync(`/proc/${pid}/mem`, 'r+');
    const all = spanOf(sems);
    this.spans = all.bytes > MAX_SEMAPHORE_SPAN ? sems.map((x) => spanOf([x])) : [all];
  }

  /**
   * Add (+1) or take away (-1) rbtrace's share. False: the process is gone or
   * its value is not what rbtrace left. All the semaphores are read, then
   * written back in one pwrite of the span that holds them (the .probes
   * section: a few dozen bytes), so Ruby fires every probe or none: the
   * counts are gated in BPF anyway, but a probe left live by a deschedule
   * between two writes would cost its traps for nothing.
   */
  private shift(sign: 1 | -1): boolean {
    return this.spans.every((span) => this.shiftSpan(span, sign));
  }

  private shiftSpan({ sems, lo, bytes: span }: SemaphoreSpan, sign: 1 | -1): boolean {
    const b = Buffer.alloc(span);
    if (readSync(this.fd, b, 0, span, lo) !== span) return false;
    for (const s of sems) {
      const v = b.readUInt16LE(s.addr - lo) + sign * s.ours;
      // Below zero: something else lowered it (the process reset it, or
      // rbtrace's uprobes are already gone): leave it.
      if (v < 0 || v > 0xffff) return false;
      b.writeUInt16LE(v, s.addr - lo);
    }
    return writeSync(this.fd, b, 0, span, lo) === span;
  }

  /** Has the kernel put rbtrace's share in every semaphore yet (its uprobes installed in the process)? */
  ready(): boolean {
    const b = Buffer.alloc(2);
    try {
      return this.sems.every((s) => readSync(this.fd, b, 0, 2, s.addr) === 2 && b.readUInt16LE(0) >= s.ours);
    } catch {
      return false;
    }
  }

  set(raised: boolean): void {
    if (raised === this.raised || this.fd < 0) return;
    if (!this.shift(raised ? 1 : -1)) this.close();
    else this.raised = raised;
  }

  /** Put rbtrace's share back (the kernel takes it away when the probes go), and let go. */
  restore(): void {
    this.set(true);
    this.close();
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** A binary's semaphores of `probes`, by link-time address: rbtrace's share in each (the probe sites behind it). */
interface BinaryShares {
  elf: ElfFile;
  shares: Map<number, number>;
}

function sharesOf(binary: BinaryFile, probes: { provider: string; name: string }[]): BinaryShares {
  const elf = ElfFile.open(binary);
  const wanted = (n: SdtNote): boolean => n.semaphore !== 0 && probes.some((p) => p.provider === n.provider && p.name === n.name);
  const shares = new Map<number, number>();
  for (const n of elf.sdtNotes().filter(wanted)) shares.set(n.semaphore, (shares.get(n.semaphore) ?? 0) + 1);
  return { elf, shares };
}

/** Where a binary's semaphores are in process `pid`, which maps it (none yet: not mapped). */
function semaphoresIn(pid: number, binary: BinaryFile, { elf, shares }: BinaryShares): Semaphore[] {
  const regions = (readRegions(pid) ?? []).filter((r) => r.file && mappingKey(r) === fileKey(binary));
  const out: Semaphore[] = [];
  for (const [vaddr, ours] of shares) {
    const off = elf.fileOffset(vaddr);
    // The data segment's private file mapping holds it (the .probes section).
    const r = off === undefined ? undefined : regions.find((m) => off >= m.offset && off < m.offset + (m.end - m.start));
    if (r) out.push({ addr: r.start + off! - r.offset, ours });
  }
  return out;
}

/** The gate's map (rbtrace_window.bpf.h), in the object of every tool with windows. */
const GATE = 'rbtrace_window_shut';

/** A loaded object whose skeleton has the gate's map (a type error otherwise). */
type GatedObject<S extends AnySkeleton> = BpfObject<S> & (typeof GATE extends MapName<S> ? unknown : { missingGateMap: typeof GATE });

/** How often processes whose probes are not in place yet (a -- CMD before its exec and ld.so) are looked at. */
const PENDING_POLL_MS = 10;

/**
 * Opens the probes `windowMs` of every `everyMs` in the processes added;
 * shut in between. add() a process as soon as its probes are attached: its
 * semaphores are lowered once the kernel has raised them (for -- CMD, when
 * ld.so maps the library after the exec).
 */
export class UsdtWindows {
  private readonly procs = new Map<number, ProcessSemaphores>();
  private readonly pending = new Map<number, BinaryFile>();
  /** Each binary's notes, parsed once (pending processes are looked at every PENDING_POLL_MS). */
  private readonly shares = new Map<string, BinaryShares>();
  private timer?: NodeJS.Timeout;
  private poll?: NodeJS.Timeout;
  private open = false;
  /** Windows opened so far, and the time they were open (ms). */
  windows = 0;
  openMs = 0;
  private openedAt = 0;
  private gate?: BpfMap;

  constructor(readonly windowMs: number, readonly everyMs: number,
    private readonly probes: { provider: string; name: string }[]) {}

  /**
   * Count through `obj`'s gate, shut until the first window. Before the
   * probes are attached: a running process (-p) fires them at once.
   */
  bind<S extends AnySkeleton>(obj: GatedObject<S>): void {
    if (this.gate) return;
    this.gate = obj.map(GATE as MapName<S>);
    this.setGate(this.open);
  }

  private setGate(open: boolean): void {
    const key = new Uint8Array(4);
    const shut = new Uint8Array(4);
    new DataView(shut.buffer).setUint32(0, open ? 0 : 1, true);
    this.gate?.updateRaw(key, shut);
  }

  add(pid: number, binary: BinaryFile): void {
    if (!this.procs.has(pid)) this.pending.set(pid, binary);
    this.settle();
  }

  /** Pending processes whose semaphores the kernel has raised: shut them until the next window. */
  private settle(): void {
    for (const [pid, binary] of this.pending) {
      let p: ProcessSemaphores;
      try {
        let shares = this.shares.get(fileKey(binary));
        if (!shares) this.shares.set(fileKey(binary), (shares = sharesOf(binary, this.probes)));
        const sems = semaphoresIn(pid, binary, shares);
        if (sems.length === 0) continue;
        p = new ProcessSemaphores(pid, sems);
      } catch {
        this.pending.delete(pid); // gone
        continue;
      }
      if (!p.ready()) {
        p.close();
        continue;
      }
      this.pending.delete(pid);
      p.set(this.open);
      this.procs.set(pid, p);
    }
  }

  start(session: Session): void {
    const cycle = (): void => {
      this.setAll(true);
      this.timer = setTimeout(() => {
        this.setAll(false);
        this.timer = setTimeout(cycle, this.everyMs - this.windowMs);
      }, this.windowMs);
    };
    this.timer = setTimeout(cycle, this.everyMs - this.windowMs);
    this.poll = setInterval(() => {
      if (this.pending.size) this.settle();
    }, PENDING_POLL_MS);
    session.own(this);
  }

  /** Probes fire before the gate opens and after it shuts, so every class is counted over the same time. */
  private setAll(open: boolean): void {
    if (open) {
      for (const p of this.procs.values()) p.set(true);
      this.setGate(true);
      this.windows++;
      this.openedAt = performance.now();
    } else {
      this.setGate(false);
      this.openMs += performance.now() - this.openedAt;
      for (const p of this.procs.values()) p.set(false);
    }
    this.open = open;
  }

  /** Before the probes are detached (the session closes this first: it was owned after them). */
  close(): void {
    clearTimeout(this.timer);
    clearInterval(this.poll);
    // Shut first: the shares put back make the probes fire until they are detached.
    if (this.open) this.openMs += performance.now() - this.openedAt;
    this.open = false;
    this.setGate(false);
    for (const p of this.procs.values()) p.restore();
    this.procs.clear();
    this.pending.clear();
  }
}

/**
 * A USDT tool's attach step for one process (or all: pid undefined), with
 * or without windows: the gate bound before `attach` puts the probes in (a
 * running -p process fires them at once), the process windowed after.
 */
export function attachWindowed<S extends AnySkeleton, L>(windows: UsdtWindows | undefined, obj: GatedObject<S>,
  pid: number | undefined, binary: BinaryFile, attach: () => L): L {
  if (!windows) return attach();
  windows.bind(obj);
  const links = attach();
  if (pid !== undefined) windows.add(pid, binary);
  return links;
}

/** --window and --every, as each USDT tool with a semaphore offers them. */
export function windowOptions(seen: string): Option[] {
  return [
    new Option('--window <ms>', `probes live only MS ms of every --every ms (-p or -- CMD): the program skips them in between; ${seen}`)
      .argParser(integerParser('--window', { min: 1, max: 60000, example: '10' })),
    new Option('--every <ms>', 'with --window: one window every MS ms (default 1000)')
      .argParser(integerParser('--every', { min: 2, max: 3600000, example: '1000' })),
  ];
}

export interface WindowOpts {
  window?: number;
  every?: number;
  allProcesses?: boolean;
}

/** The windows --window asks for (undefined without it); usage errors for what cannot go with it. */
export function windowsFor(target: { pid?: number; command?: unknown }, opts: WindowOpts,
  probes: { provider: string; name: string }[]): UsdtWindows | undefined {
  if (opts.window === undefined) {
    if (opts.every !== undefined) throw new UsageError('--every needs --window', 'add --window MS (e.g. --window 10 --every 1000)');
    return undefined;
  }
  const every = opts.every ?? 1000;
  if (opts.window >= every) throw new UsageError(`--window ${opts.window} is not shorter than --every ${every}`, 'give a window shorter than the period, e.g. --window 10 --every 1000');
  if ((target.pid === undefined && !target.command) || opts.allProcesses) {
    throw new UsageError('--window needs -p PID or -- CMD (without --all-processes)', 'its semaphores are set in the processes rbtrace attached to, not system-wide');
  }
  return new UsdtWindows(opts.window, every, probes);
}

/** The report's note on what the windows saw. */
export function windowsNote(w: UsdtWindows): string {
  return `probes live ${w.windowMs} ms of every ${w.everyMs} ms (${w.windows} windows, ${Math.round(w.openMs)} ms in all): ` +
    'counts are those seen in the windows; SHARE estimates the whole run\'s mix';
}

/** The windows in a JSON record. */
export function windowsFigures(w: UsdtWindows): object {
  return { window_ms: w.windowMs, every_ms: w.everyMs, windows: w.windows, open_ms: Math.round(w.openMs) };
}

/** Percent of `count` in `total`, one decimal: a row's SHARE. */
export function sharePct(count: number, total: number): number {
  return total ? Math.round((count / total) * 1000) / 10 : 0;
}
