// biolatency's readings: the only code that reads its maps and ring buffer.
// Histograms are cumulative in the kernel; a reading is the difference with
// the previous one (exact: nothing is deleted while the probes add to it).
import type { BpfObject } from '../../core/bpf/object.js';
import { blockDevName } from '../../core/linux/blockdev.js';
import { bio_event_layout, ENUMS, type BioHist, type SKELETON } from '../../generated/biolatency.js';

/** One histogram of a report: a disk and/or operation, or everything. */
export interface BioHistRow {
  disk?: string;       // -D
  op?: string;         // -F
  count: number;
  total_ns: number;
  bytes: number;
  hist: number[];      // log2 slots in the report's unit
}

/** One completed request (--events). */
export interface BioEventRow {
  ts_ns: number;
  comm: string;
  pid: number;
  disk: string;
  op: string;
  sector: number;
  bytes: number;
  latency_ns: number;
  queued_ns: number;
  error: number;
}

const OP_NAMES: Record<number, string> = {
  [ENUMS.BIO_OP_READ]: 'read', [ENUMS.BIO_OP_WRITE]: 'write', [ENUMS.BIO_OP_FLUSH]: 'flush',
  [ENUMS.BIO_OP_DISCARD]: 'discard', [ENUMS.BIO_OP_SECURE_ERASE]: 'secure-erase', [ENUMS.BIO_OP_WRITE_ZEROES]: 'write-zeroes',
};

export function opName(op: number): string {
  return OP_NAMES[op] ?? `op-${op}`;
}

/** -F's names, for the views. */
export const OPS = Object.values(OP_NAMES);

export class BiolatencyCollector {
  private readonly hists;
  private readonly counts;
  private prev = new Map<string, BioHist>();
  private readonly names = new Map<number, string>();

  constructor(obj: BpfObject<typeof SKELETON>, private readonly split: { perDisk: boolean; perOp: boolean }) {
    this.hists = obj.typedMap('hists');
    this.counts = obj.typedMap('counts');
  }

  /** A disk's name, looked up once (a loop device detached later keeps its name). */
  disk(dev: number): string {
    let name = this.names.get(dev);
    if (name === undefined) {
      name = blockDevName(dev);
      this.names.set(dev, name);
    }
    return name;
  }

  /** Histograms since the previous reading, those with requests only. */
  rows(): BioHistRow[] {
    const rows: BioHistRow[] = [];
    const now = new Map<string, BioHist>();
    for (const [k, v] of this.hists.entries()) {
      const id = `${k.dev}:${k.op}`;
      now.set(id, v);
      const p = this.prev.get(id);
      const count = v.count - (p?.count ?? 0);
      if (count <= 0) continue;
      rows.push({
        ...(this.split.perDisk ? { disk: this.disk(k.dev) } : {}),
        ...(this.split.perOp ? { op: opName(k.op) } : {}),
        count,
        total_ns: v.total_ns - (p?.total_ns ?? 0),
        bytes: v.bytes - (p?.bytes ?? 0),
        hist: v.slots.map((s, i) => s - (p?.slots[i] ?? 0)),
      });
    }
    this.prev = now;
    return rows.sort((a, b) => (a.disk ?? '').localeCompare(b.disk ?? '') || (a.op ?? '').localeCompare(b.op ?? ''));
  }

  /** Completions of requests whose start was not seen (in flight at attach). */
  untracked(): number {
    return this.counts.lookup({ value: 0 })?.untracked ?? 0;
  }

  event(rec: DataView): BioEventRow {
    const e = bio_event_layout.decode(rec);
    return {
      ts_ns: e.ts_ns, comm: e.comm, pid: e.pid, disk: this.disk(e.dev), op: opName(e.op),
      sector: e.sector, bytes: e.bytes, latency_ns: e.latency_ns, queued_ns: e.queued_ns, error: e.error,
    };
  }
}
