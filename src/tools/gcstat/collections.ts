// gcstat's GC model: one collection per gc__mark__begin, its sweep steps
// (lazy sweep: one probe pair per step, run as the program allocates)
// belonging to it until the next collection begins. Where the VM's layout is
// known each step carries the VM's own collection number and reason, so a
// step is put in the collection Ruby numbered, whatever the order; else by
// order. A pause is one step (the program stops for it); a collection's GC
// time is the sum of its steps. Incremental marking steps after the first
// fire no probe: they are not in the figures (man page).
import { decodeGcInfo, type GcReason } from './layout.js';

export interface GcStepRecord {
  pid: number;
  comm: string;
  phase: 'mark' | 'sweep';
  start_ns: number;
  dur_ns: number;
  /** The VM's collection number and flags, when read (else null). */
  gc: number | null;
  info: number | null;
}

/** One collection, as --log prints it. */
export interface Collection extends Partial<GcReason> {
  pid: number;
  comm: string;
  /** GC.count of this collection (null: the VM's layout is unknown). */
  gc: number | null;
  start_ns: number;
  mark_steps: number;
  mark_ns: number;
  sweep_steps: number;
  sweep_ns: number;
  /** Sum of its pauses (mark and sweep steps). */
  pause_ns: number;
  max_pause_ns: number;
}

export type CollectionKind = 'major' | 'minor' | 'unknown';

/** Major or minor, as the VM said (unknown: its layout was not). */
export function collectionKind(c: Collection): CollectionKind {
  return c.major === undefined ? 'unknown' : c.major ? 'major' : 'minor';
}

function newCollection(s: GcStepRecord): Collection {
  const reason = s.info !== null ? decodeGcInfo(s.info) : {};
  return { pid: s.pid, comm: s.comm, gc: s.gc, ...reason, start_ns: s.start_ns, mark_steps: 0, mark_ns: 0, sweep_steps: 0, sweep_ns: 0, pause_ns: 0, max_pause_ns: 0 };
}

/**
 * Steps in, collections out. A collection is done when the next one of its
 * process begins, or at flush() (the end, or a process gone): until then a
 * lazy sweep may still add steps to it.
 */
export class CollectionModel {
  private readonly current = new Map<number, Collection>();
  /** Per process, the last mark step: [start, end] ns. */
  private readonly marks = new Map<number, [number, number]>();

  /** Add a step: the collection it closed and the one it began, if it began one. */
  add(s: GcStepRecord): { done?: Collection; begun?: Collection } {
    const cur = this.current.get(s.pid);
    const fresh = cur === undefined ||
      (s.gc !== null ? s.gc !== cur.gc : s.phase === 'mark');
    let done: Collection | undefined;
    let c = cur;
    if (fresh) {
      done = cur;
      c = newCollection(s);
      this.current.set(s.pid, c);
    }
    const end = s.start_ns + s.dur_ns;
    if (s.phase === 'mark') {
      c!.mark_steps++;
      c!.mark_ns += s.dur_ns;
      this.marks.set(s.pid, [s.start_ns, end]);
    } else {
      c!.sweep_steps++;
      c!.sweep_ns += s.dur_ns;
    }
    // A sweep run from inside the mark probes (a non-lazy GC sweeps as it
    // finishes marking) is part of that mark's pause, not a pause of its own.
    const mark = this.marks.get(s.pid);
    const nested = s.phase === 'sweep' && mark !== undefined && s.start_ns >= mark[0] && end <= mark[1];
    if (!nested) {
      c!.pause_ns += s.dur_ns;
      c!.max_pause_ns = Math.max(c!.max_pause_ns, s.dur_ns);
    }
    c!.comm = s.comm;
    return { done, begun: fresh ? c : undefined };
  }

  /** The collection of `pid` still open, if any. */
  open(pid: number): Collection | undefined {
    return this.current.get(pid);
  }

  /** The collections still open (all, or those of processes not in `alive`), removed. */
  flush(alive?: (pid: number) => boolean): Collection[] {
    const out: Collection[] = [];
    for (const [pid, c] of this.current) {
      if (alive?.(pid)) continue;
      out.push(c);
      this.current.delete(pid);
      this.marks.delete(pid);
    }
    return out;
  }
}
