// strlat --stack --unwind dwarf: the only code that reads strlat.bpf.c's
// `calls` ring buffer. Each record (one call, at its return: its latency and
// a copy of the caller's stack, src/bpf/include/rbtrace_ustack.bpf.h) is
// unwound at once with the modules' .eh_frame (src/core/unwind/record.ts:
// the copy is gone after the callback) and summed by (function, process,
// pcs); only the rows a report shows are symbolized, as the stack-id path
// (collect.ts StackCollector) does.
import type { BpfObject } from '../../core/bpf/object.js';
import type { ToolContext } from '../../core/tool.js';
import { Symbolizer } from '../../core/stacks/index.js';
import { RecordUnwinder } from '../../core/unwind/record.js';
import type { Unwound } from '../../core/unwind/unwinder.js';
import { strlat_call_layout, type SKELETON } from '../../generated/strlat.js';
import { topStackRows, type StackSource, type StackTotals, type StrlatStackRow } from './collect.js';

interface CallTotals extends StackTotals {
  pcs: number[];
  end: Unwound['end'];
}

export interface CopyStats {
  /** Records unwound. */
  calls: number;
  /** ... whose walk reached the outermost frame (the CFI says so, or a zero return address). */
  complete: number;
  /** Stack bytes copied, summed. */
  stackBytes: number;
  /** Time spent unwinding, ms. */
  cpuMs: number;
}

export class CopyStackCollector implements StackSource {
  private readonly sym = new Symbolizer();
  private readonly unwinder = new RecordUnwinder(this.sym);
  private rows = new Map<string, CallTotals>();
  readonly stats: CopyStats = { calls: 0, complete: 0, stackBytes: 0, cpuMs: 0 };

  constructor(obj: BpfObject<typeof SKELETON>, ctx: ToolContext, private readonly top: number) {
    ctx.ringBuffer(obj, 'calls', (rec) => this.onCall(rec));
  }

  /** One `calls` record. */
  private onCall(rec: DataView): void {
    const t0 = performance.now();
    const L = strlat_call_layout;
    const pid = L.read(rec, 'tgid');
    const func = L.read(rec, 'func');
    const ns = Number(L.read(rec, 'ns'));
    // The mappings are read now, while the process runs: a command that has exited by the report still gets names.
    this.sym.notePid(pid);
    const u = this.unwinder.unwind(pid, L, rec);
    this.stats.calls++;
    this.stats.stackBytes += L.read(rec, 'stack_len');
    if (u.end === 'end') this.stats.complete++;
    const key = `${func}\0${pid}\0${u.pcs.join(',')}`;
    const had = this.rows.get(key);
    if (had) {
      had.count++;
      had.total_ns += ns;
      had.max_ns = Math.max(had.max_ns, ns);
    } else {
      this.rows.set(key, { func, pid, count: 1, total_ns: ns, max_ns: ns, pcs: u.pcs, end: u.end });
    }
    this.stats.cpuMs += performance.now() - t0;
  }

  take(nfuncs: number): StrlatStackRow[][] {
    const entries = [...this.rows.values()];
    this.rows = new Map();
    return topStackRows(entries, nfuncs, this.top, (e) => ({
      ...this.sym.symbolize(e.pid, e.pcs.map(BigInt)),
      // The walk knows whether it reached the outermost frame: no guessing from the frames.
      truncated: e.end !== 'end',
    }));
  }

  errors(): number {
    return 0;
  }
}
