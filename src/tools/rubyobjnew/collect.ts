// rubyobjnew's readings: the only code that reads its maps. The map holds
// totals since load; each report is the difference with the previous one.
import type { BpfObject } from '../../core/bpf/object.js';
import { readPerCpuCounter } from '../../core/bpf/maps.js';
import { ENUMS, type SKELETON } from '../../generated/rubyobjnew.js';

export type AllocProbe = 'object' | 'string' | 'array' | 'hash' | 'symbol';

const PROBE_OF: Record<number, AllocProbe> = {
  [ENUMS.RO_OBJECT]: 'object', [ENUMS.RO_STRING]: 'string', [ENUMS.RO_ARRAY]: 'array', [ENUMS.RO_HASH]: 'hash', [ENUMS.RO_SYMBOL]: 'symbol',
};
/** The class of what the probes other than object__create create. */
const CLASS_OF: Record<AllocProbe, string> = { object: '', string: 'String', array: 'Array', hash: 'Hash', symbol: 'Symbol' };

/** One class (per site with --site, per process with -P) during one report. */
export interface AllocRow {
  pid?: number;
  /** The class allocated: object__create's class name, else String/Array/Hash/Symbol. */
  class: string;
  probe: AllocProbe;
  /** --site: path:line of the Ruby code allocating, as the probe gives it; '-' when no Ruby frame runs. */
  site?: string;
  /** Allocations seen (one in N with --sample N). */
  count: number;
  /** Sum of the length argument: characters of strings, elements of arrays, keys plus values of hashes. */
  length?: number;
}

interface Totals { count: number; length: number }

export class AllocsCollector {
  private prev = new Map<string, Totals>();

  constructor(private readonly obj: BpfObject<typeof SKELETON>, private readonly bySite: boolean) {}

  rows(): AllocRow[] {
    const out: AllocRow[] = [];
    const now = new Map<string, Totals>();
    for (const [k, v] of this.obj.typedMap('allocs').entries()) {
      const probe = PROBE_OF[k.kind] ?? 'object';
      // No Ruby frame (allocations while the VM boots, or from C with none): the probe gives "" and 0.
      const site = this.bySite ? (k.file ? `${k.file}:${k.line}` : '-') : undefined;
      const id = `${k.pid}\0${k.kind}\0${k.klass}\0${site ?? ''}`;
      now.set(id, { count: v.count, length: v.length });
      const p = this.prev.get(id);
      const count = v.count - (p?.count ?? 0);
      if (count <= 0) continue;
      out.push({
        ...(k.pid ? { pid: k.pid } : {}),
        class: probe === 'object' ? k.klass : CLASS_OF[probe], probe,
        ...(site !== undefined ? { site } : {}),
        count,
        ...(probe === 'string' || probe === 'array' || probe === 'hash' ? { length: v.length - (p?.length ?? 0) } : {}),
      });
    }
    this.prev = now;
    return out;
  }

  /** Allocations not counted since load because the table was full. */
  dropped(): number {
    return readPerCpuCounter(this.obj.map('dropped'));
  }
}
