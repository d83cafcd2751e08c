// mallocstat --leaks: the blocks not freed yet (the BPF map `live`, filled at
// each allocation's return and emptied by free: see mallocstat.bpf.c),
// grouped by the user stack that allocated them, largest first, as bcc's
// memleak does. Stacks are named by src/core/stacks (h13's Symbolizer).
import type { BpfObject } from '../../core/object.js';
import { readPerCpuCounter, type TypedMap } from '../../core/maps.js';
import { scalarLayout } from '../../core/layout.js';
import { StackMap, Symbolizer, symbolTableFor, type Frame, type Stack, type SymbolTable } from '../../core/stacks/index.js';
import { resolve } from 'node:path';
import { ElfFile } from '../../core/elf.js';
import { openFile } from '../../core/procfiles.js';
import { resolveCommand, systemLibrary } from '../../core/process.js';
import { formatBytes, formatCount, term } from '../../core/output/format.js';
import type { ToolContext } from '../../core/tool.js';
import { ms_live_key_layout, ms_live_layout, ms_proc_layout, type MsLiveKey, type MsLive, ENUMS, DEFINES, type SKELETON } from '../../generated/mallocstat.js';

/** A frame as the kernel named it when the stack was first seen: build id + file offset (status 1), or only the address. */
interface BuildFrame { buildId?: string; offset: number }

/** Default of --max-allocs: bcc memleak's table size; about 100 bytes of kernel memory each, allocated only as blocks go live. */
export const DEFAULT_MAX_ALLOCS = 1_000_000;
/** Stack groups printed as text (--json has them all). */
const TEXT_GROUPS = 20;

export interface LeakGroup {
  pid?: number;
  stack: Stack;
  count: number;
  bytes: number;
}

export interface LeakReport {
  groups: LeakGroup[];
  count: number;
  bytes: number;
  /** Blocks not tracked because the live map was full (--max-allocs). */
  dropped: number;
  /** Stacks that could not be stored (their blocks are grouped as "[lost stack]"). */
  lostStacks: number;
}

export interface LeakOptions {
  perProcess: boolean;
  /** -- CMD's argv[0]: its executable and libraries are where build ids are looked for. */
  command?: string;
  /** --older SECS: only blocks at least this old at report time. */
  olderS?: number;
  maxAllocs: number;
}

/** Before load: the live map sized to --max-allocs, and the stack map only as large as the mode needs. */
export function configureLeaks(obj: BpfObject<typeof SKELETON>, leaks: boolean, maxAllocs: number): void {
  obj.map('live').maxEntries = leaks ? maxAllocs : 1;
  // A stack map is preallocated (1 KiB a slot): count mode needs none.
  if (!leaks) StackMap.resize(obj, 1);
}

export class LeakTracker {
  private readonly live: TypedMap<MsLiveKey, MsLive>;
  private readonly procs;
  private readonly stacks: StackMap;
  /** One per process image: an exec makes a new one (its addresses mean other code). */
  private readonly symbolizers = new Map<number, Symbolizer>();
  /** pid:stackid -> symbolized stack (the same frames until the process execs). */
  private readonly named = new Map<string, Stack>();
  /** pid:stackid -> its frames by build id (ms_stack_event), for processes gone before their mappings were read. */
  private readonly built = new Map<string, BuildFrame[]>();
  /** build id -> symbol table, from the files the target is known to use (built on first need). */
  private byBuildId?: Map<string, { table: SymbolTable; path: string }>;

  constructor(private readonly obj: BpfObject<typeof SKELETON>, private readonly opts: LeakOptions) {
    this.live = obj.map('live').typed(ms_live_key_layout, ms_live_layout);
    this.procs = obj.map('procs').typed(scalarLayout('u32'), ms_proc_layout);
    this.stacks = StackMap.of(obj);
  }

  /** Read `pid`'s mappings now, while it runs: its frames are named at the end, maybe after it exited. */
  notePid(pid: number): void {
    this.symbolizerOf(pid).notePid(pid);
  }

  private symbolizerOf(pid: number): Symbolizer {
    let s = this.symbolizers.get(pid);
    if (!s) this.symbolizers.set(pid, (s = new Symbolizer()));
    return s;
  }

  /** A ring buffer record: a process's first allocation (or first since an exec), or a stack's frames by build id. */
  onEvent(record: DataView): void {
    const kind = record.getUint32(0, true);
    const pid = record.getUint32(4, true);
    if (kind === ENUMS.MS_EV_STACK) {
      const stackid = record.getInt32(8, true);
      const n = Math.min(record.getUint32(12, true), DEFINES.MS_STACK_FRAMES);
      const frames: BuildFrame[] = [];
      for (let i = 0; i < n; i++) {
        const o = 16 + i * 32;
        const status = record.getInt32(o, true);
        const id = Buffer.from(record.buffer, record.byteOffset + o + 4, 20).toString('hex');
        frames.push(status === 1 ? { buildId: id, offset: Number(record.getBigUint64(o + 24, true)) } : { offset: Number(record.getBigUint64(o + 24, true)) });
      }
      this.built.set(`${pid}:${stackid}`, frames);
      return;
    }
    if (this.symbolizers.has(pid)) {
      // An exec: a new image. Its older blocks are dropped (read()), its new stacks named afresh.
      this.symbolizers.delete(pid);
      for (const k of [...this.named.keys()]) if (k.startsWith(`${pid}:`)) this.named.delete(k);
      for (const k of [...this.built.keys()]) if (k.startsWith(`${pid}:`)) this.built.delete(k);
    }
    this.notePid(pid);
  }

  private stackOf(pid: number, stackid: number): Stack {
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
      const found = this.opts.command ? resolveCommand(this.opts.command) : undefined;
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

  /** Blocks live now (final: the end of the run; the map is emptied as it is read). */
  read(final: boolean): LeakReport {
    const nowNs = Number(process.hrtime.bigint()); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
    const minAgeNs = (this.opts.olderS ?? 0) * 1e9;
    const execNs = new Map<number, number>();
    for (const [k, v] of this.procs.entries()) execNs.set(k.value, v.exec_ns);
    const groups = new Map<string, LeakGroup>();
    let count = 0;
    let bytes = 0;
    for (const [k, v] of final ? this.live.drain() : this.live.entries()) {
      if (v.ts_ns < (execNs.get(k.pid) ?? 0)) continue; // freed by the exec that replaced the image
      if (minAgeNs && nowNs - v.ts_ns < minAgeNs) continue;
      const stack = this.stackOf(k.pid, v.stackid);
      const where = stack.frames.length ? stack.frames.map((f) => `${f.module ?? ''}\0${f.name}`).join('\n') : '[lost stack]';
      const key = this.opts.perProcess ? `${k.pid}\n${where}` : where;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { ...(this.opts.perProcess ? { pid: k.pid } : {}), stack, count: 0, bytes: 0 }));
      g.count++;
      g.bytes += v.size;
      count++;
      bytes += v.size;
    }
    const sorted = [...groups.values()].sort((a, b) => b.bytes - a.bytes || b.count - a.count);
    return { groups: sorted, count, bytes, dropped: readPerCpuCounter(this.obj.map('dropped')), lostStacks: this.stacks.errors() };
  }
}

function frameJson(f: Frame): Record<string, unknown> {
  return {
    function: f.name,
    ...(f.module ? { module: f.module } : {}),
    address: `0x${f.addr.toString(16)}`,
    ...(f.offset !== undefined ? { offset: f.offset } : {}),
  };
}

/** --json: `leaks` is the groups, largest first; each has stack (innermost first), count and bytes. */
export function leaksJson(r: LeakReport, maxAllocs: number): Record<string, unknown> {
  return {
    leaks: r.groups.map((g) => ({
      ...(g.pid !== undefined ? { pid: g.pid } : {}),
      stack: g.stack.frames.map(frameJson),
      ...(g.stack.truncated ? { truncated: true } : {}),
      count: g.count,
      bytes: g.bytes,
    })),
    leaked: { count: r.count, bytes: r.bytes, max_allocs: maxAllocs, untracked: r.dropped, lost_stacks: r.lostStacks },
  };
}

/** Text: one block per stack, memleak's layout. */
export function renderLeaks(ctx: ToolContext, r: LeakReport, opts: LeakOptions): string {
  const older = opts.olderS ? ` older than ${opts.olderS} s` : '';
  let text = ctx.color.bold(`Not freed${older}: ${formatCount(r.count)} allocation${r.count === 1 ? '' : 's'}, ${formatBytes(r.bytes)}`) +
    (r.groups.length ? `, from ${formatCount(r.groups.length)} stack${r.groups.length === 1 ? '' : 's'} (largest first)` : '') + '\n';
  for (const g of r.groups.slice(0, TEXT_GROUPS)) {
    const pid = g.pid !== undefined ? term` (pid ${g.pid})` : '';
    text += `  ${formatBytes(g.bytes)} in ${formatCount(g.count)} allocation${g.count === 1 ? '' : 's'}${pid} from:\n`;
    if (!g.stack.frames.length) text += '    [lost stack]\n';
    for (const f of g.stack.frames) {
      const off = f.offset !== undefined ? `+0x${f.offset.toString(16)}` : '';
      const mod = f.module ? ctx.color.dim(term` [${f.module}]`) : '';
      text += term`    ${f.name}` + off + mod + '\n';
    }
    if (g.stack.truncated) text += ctx.color.dim('    [stack cut short: frame pointers missing?]') + '\n';
  }
  if (r.groups.length > TEXT_GROUPS) text += ctx.color.dim(`  ... ${formatCount(r.groups.length - TEXT_GROUPS)} more stacks (--json lists every one)`) + '\n';
  return text;
}

/** The one-line warnings of a leak report: the cap hit, stacks lost. */
export function leakWarnings(r: LeakReport, maxAllocs: number): string[] {
  const out: string[] = [];
  if (r.dropped) out.push(`${formatCount(r.dropped)} allocations not tracked: --max-allocs ${formatCount(maxAllocs)} reached (raise --max-allocs)`);
  if (r.lostStacks) out.push(`${formatCount(r.lostStacks)} stacks could not be stored (shown as [lost stack])`);
  return out;
}
