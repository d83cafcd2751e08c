// mallocstat --leaks --unwind dwarf: the only code that reads the ms_copies
// ring buffer. Each record (an allocation's return: the block's address and
// a copy of the caller's stack, src/bpf/include/rbtrace_ustack.bpf.h) is
// unwound at once (src/core/unwind/record.ts: the copy is gone after the
// callback) and kept as (pid, address) -> walk while the block may be live.
// Frees stay in BPF (the live map): each report drops the walks of blocks no
// longer live.
import { RecordUnwinder } from '../../core/unwind/record.js';
import type { Unwound } from '../../core/unwind/unwinder.js';
import type { Stack } from '../../core/stacks/index.js';
import { ms_alloc_copy_layout } from '../../generated/mallocstat.js';
import type { LeakStacks } from './leak-stacks.js';

interface Block {
  /** Index into walks. */
  walk: number;
  /** The report count when it came: a block newer than the last report may not be in the live map yet. */
  gen: number;
}

export class LeakCopies {
  private readonly unwinder: RecordUnwinder;
  private readonly blocks = new Map<string, Block>();
  /** Distinct walks, interned: many blocks share one stack. */
  private readonly walkIds = new Map<string, number>();
  private readonly walks: Pick<Unwound, 'pcs' | 'end'>[] = [];
  private gen = 0;
  /** Records unwound, and of them those that reached the outermost frame. */
  readonly stats = { copies: 0, complete: 0 };

  constructor(private readonly stacks: LeakStacks) {
    this.unwinder = new RecordUnwinder(stacks);
  }

  /** One ms_copies record. */
  onCopy(rec: DataView): void {
    const L = ms_alloc_copy_layout;
    const pid = L.read(rec, 'pid');
    this.stacks.notePid(pid); // its mappings now, while it runs
    const u = this.unwinder.unwind(pid, L, rec);
    this.stats.copies++;
    if (u.end === 'end') this.stats.complete++;
    const key = `${pid}\0${u.pcs.join(',')}`;
    let walk = this.walkIds.get(key);
    if (walk === undefined) {
      walk = this.walks.push({ pcs: u.pcs, end: u.end }) - 1;
      this.walkIds.set(key, walk);
    }
    // A block at an address freed and allocated again: the newer record wins.
    this.blocks.set(`${pid}:${L.read(rec, 'addr')}`, { walk, gen: this.gen });
  }

  /** The stack that allocated the live block at `addr` of `pid`; none when its record was lost. */
  stackOf(pid: number, addr: number): Stack {
    const b = this.blocks.get(`${pid}:${addr}`);
    if (!b) return { frames: [], truncated: false };
    const w = this.walks[b.walk];
    return this.stacks.stackOfWalk(pid, b.walk, w.pcs, w.end === 'end');
  }

  /**
   * After a report that read every live block (`live`: "pid:addr" of those
   * sent as copies): forget the others, freed since, unless they came after
   * the previous report (their live entry may not have been written yet).
   */
  prune(live: ReadonlySet<string>): void {
    for (const [k, b] of this.blocks) if (b.gen < this.gen && !live.has(k)) this.blocks.delete(k);
    this.gen++;
  }
}
