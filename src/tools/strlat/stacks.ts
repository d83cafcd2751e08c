// strlat --stack: each function's latency by the stack that called it (the
// callers that make the slow calls). The BPF side sums count/total/max per
// (function, process, user stack id, kernel stack id) in stack_lat; this
// side drains it at each report and symbolizes the stacks through
// src/core/stacks (user frames by the process's mappings and ELF symbols,
// kernel frames by kallsyms). Processes are noted while they run, so a
// command that has exited by the final report still gets names.
import type { BpfObject } from '../../core/object.js';
import type { ToolContext } from '../../core/tool.js';
import { StackMap, Symbolizer, type Stack } from '../../core/stacks/index.js';
import { escapeForTerminal } from '../../core/output/format.js';
import { strlat_stack_key_layout, strlat_stack_val_layout, DEFINES, type SKELETON } from '../../generated/strlat.js';

/** One stack of one function in a report, as --json prints it. */
export interface StrlatStackRow {
  count: number;
  total_ns: number;
  avg_ns: number;
  max_ns: number;
  pid: number;
  /** Innermost first: the function's caller first (kernel frames first for --kfunc). */
  stack: { name: string; module?: string; kernel?: boolean }[];
  /** The user stack was probably cut short (frame pointers missing). */
  truncated: boolean;
}

/** Before load: the stack table only with --stack (a hash is preallocated). */
export function sizeStackMaps(obj: BpfObject<typeof SKELETON>, on: boolean): void {
  obj.map('stack_lat').maxEntries = on ? DEFINES.STRLAT_STACK_KEYS : 1;
  if (!on) StackMap.resize(obj, 1);
}

export class StackCollector {
  private readonly symbolizer = new Symbolizer();
  private readonly stacks: StackMap;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly obj: BpfObject<typeof SKELETON>, ctx: ToolContext, private readonly top: number) {
    this.stacks = StackMap.of(obj);
    // Note each process while it runs (its mappings), for names after it exits.
    this.timer = setInterval(() => this.notePids(), 100);
    this.timer.unref();
    ctx.session.own({ close: () => clearInterval(this.timer) });
  }

  private notePids(): void {
    for (const k of this.obj.map('stack_lat').typed(strlat_stack_key_layout, strlat_stack_val_layout).keys()) this.symbolizer.notePid(k.tgid);
  }

  /** Per function (by index): its `top` stacks by total time since the last call. */
  take(nfuncs: number): StrlatStackRow[][] {
    this.notePids();
    const rows: StrlatStackRow[][] = Array.from({ length: nfuncs }, () => []);
    const drained = this.obj.map('stack_lat').typed(strlat_stack_key_layout, strlat_stack_val_layout).drain();
    for (const [k, v] of drained.sort((a, b) => b[1].total_ns - a[1].total_ns)) {
      const list = rows[k.func];
      if (!list || list.length >= this.top) continue;
      const st: Stack = this.symbolizer.symbolize(k.tgid, this.stacks.addresses(k.ustack), this.stacks.addresses(k.kstack));
      list.push({
        count: v.count, total_ns: v.total_ns, avg_ns: v.count ? Math.round(v.total_ns / v.count) : 0, max_ns: v.max_ns, pid: k.tgid,
        stack: st.frames.map((f) => ({ name: f.name, ...(f.module ? { module: f.module } : {}), ...(f.kernel ? { kernel: true } : {}) })),
        truncated: st.truncated,
      });
    }
    return rows;
  }

  /** Captures the stack map could not keep (full, collisions). */
  errors(): number {
    return this.stacks.errors();
  }
}

/** Text: a stack, outermost caller first (as a flame graph reads), one frame a line. */
export function formatStack(row: StrlatStackRow): string[] {
  const frames = [...row.stack].reverse().map((f) => `      ${escapeForTerminal(f.name)}${f.kernel ? ' [k]' : ''}`);
  return row.truncated ? ['      [truncated: frame pointers missing?]', ...frames] : frames;
}
