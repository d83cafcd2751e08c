// Reading BPF_MAP_TYPE_STACK_TRACE (rbtrace_stacks.bpf.h's rbtrace_stacks):
// a stack id to its addresses, innermost first.
import type { BpfMap } from '../bpf/maps.js';
import type { BpfObject } from '../bpf/object.js';
import { readPerCpuCounter } from '../bpf/maps.js';
import type { Frame } from './symbolizer.js';
import { plural } from '../output/format.js';

export const STACK_MAP = 'rbtrace_stacks';
export const STACK_ERRORS_MAP = 'rbtrace_stack_errors';

/** rbtrace_stacks.bpf.h's RBTRACE_STACK_NONE and _LOST, the ids that are not
 * ids (test/unit/stack-ids.test.ts reads them from the header). */
export const STACK_NONE = -1;
export const STACK_LOST = -2;

/** The warning for `n` failed captures, the same in every tool. */
export function stackErrorsNote(n: number): string {
  return `${plural(n, 'stack')} not captured (stack map full, a hash collision, or no callchain from the kernel): marked [lost user stack] or [lost stack]`;
}

/**
 * The marker frame, outermost, for a stack whose sides the kernel did not
 * both give: "[lost user stack]" when the user side's capture failed (the
 * kernel side, if any, is still shown), "[lost stack]" when neither side
 * came, or `noSides` when that is expected (a kernel-only profile's sample
 * in user mode).
 */
export function missingStackFrame(userId: number, kernelId: number, noSides = '[lost stack]'): Frame | undefined {
  if (userId >= 0) return undefined;
  if (kernelId < 0) return { name: userId === STACK_LOST ? '[lost stack]' : noSides, addr: 0n, kernel: false };
  return userId === STACK_LOST ? { name: '[lost user stack]', addr: 0n, kernel: false } : undefined;
}

export class StackMap {
  private readonly cache = new Map<number, bigint[]>();

  constructor(readonly map: BpfMap, private readonly errorsMap?: BpfMap) {}

  /** The stack map of an object built with rbtrace_stacks.bpf.h. */
  static of(obj: BpfObject): StackMap {
    return new StackMap(obj.map(STACK_MAP), obj.map(STACK_ERRORS_MAP));
  }

  /** Before load: room for `n` distinct stacks (user and kernel stacks count apart). */
  static resize(obj: BpfObject, n: number): void {
    obj.map(STACK_MAP).maxEntries = n;
  }

  /** The addresses of stack `id` (innermost first); [] for id < 0 or one gone from the map. */
  addresses(id: number): bigint[] {
    if (id < 0) return [];
    const hit = this.cache.get(id);
    if (hit) return hit;
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, id, true);
    const raw = this.map.lookupRaw(key);
    const out: bigint[] = [];
    if (raw) {
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let o = 0; o + 8 <= raw.byteLength; o += 8) {
        const a = dv.getBigUint64(o, true);
        if (a === 0n) break;
        out.push(a);
      }
    }
    this.cache.set(id, out);
    return out;
  }

  /** Captures that failed (map full, hash collisions) so far, over all CPUs. */
  errors(): number {
    return this.errorsMap ? readPerCpuCounter(this.errorsMap) : 0;
  }

  /** The map's capacity, to say "raise it" when errors() is not 0. */
  get capacity(): number {
    return this.map.maxEntries;
  }
}
