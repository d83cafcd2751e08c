// From the BPF counts to stacks: read `counts` and the stack map once,
// symbolize each distinct stack, merge the ones that read the same (two
// addresses in one function are one frame), and shape them for the table,
// --folded, --json and the SVG.
import type { BpfObject } from '../../core/object.js';
import { readPerCpuCounter } from '../../core/maps.js';
import { scalarLayout } from '../../core/layout.js';
import { StackMap, Symbolizer, foldedFrames, type Frame } from '../../core/stacks/index.js';
import { profile_key_layout, type SKELETON } from '../../generated/profile.js';

export interface ProfiledStack {
  comm: string;
  pids: number[];
  count: number;
  truncated: boolean;
  /** Innermost first. */
  frames: Frame[];
  /** Outermost first, the comm first: the folded fields. */
  folded: string[];
}

export interface Profile {
  samples: number;
  /** Sorted by count, largest first. */
  stacks: ProfiledStack[];
  /** Stack captures that failed (stack map full, collisions). */
  stackErrors: number;
  /** Samples not counted: the counts map was full. */
  dropped: number;
}

/**
 * `kernelOnly`: a sample in user mode has no kernel stack (and no user
 * stack was asked for): it is shown as "[user]", not as a lost stack.
 */
export function readProfile(obj: BpfObject<typeof SKELETON>, sym: Symbolizer, kernelOnly = false): Profile {
  const stackMap = StackMap.of(obj);
  const entries = obj.map('counts').typed(profile_key_layout, scalarLayout('u64')).entries();
  const merged = new Map<string, ProfiledStack>();
  let samples = 0;
  for (const [k, v] of entries) {
    samples += v.value;
    const st = sym.symbolize(k.tgid, stackMap.addresses(k.user_stack), stackMap.addresses(k.kernel_stack));
    if (k.user_stack < 0 && k.kernel_stack < 0) st.frames.push({ name: kernelOnly ? '[user]' : '[lost stack]', addr: 0n, kernel: false });
    const folded = foldedFrames(k.comm, st);
    const key = folded.join(';');
    const had = merged.get(key);
    if (had) {
      had.count += v.value;
      if (!had.pids.includes(k.tgid)) had.pids.push(k.tgid);
    } else {
      merged.set(key, { comm: k.comm, pids: [k.tgid], count: v.value, truncated: st.truncated, frames: st.frames, folded });
    }
  }
  const stacks = [...merged.values()].sort((a, b) => b.count - a.count || (a.folded.join(';') < b.folded.join(';') ? -1 : 1));
  return { samples, stacks, stackErrors: stackMap.errors(), dropped: readPerCpuCounter(obj.map('dropped')) };
}

/** --json's frame: addresses as hex strings (64-bit kernel addresses do not fit a JSON number). */
export function frameJson(f: Frame): Record<string, unknown> {
  return {
    name: f.name,
    ...(f.symbol ? { symbol: f.symbol } : {}),
    ...(f.module ? { module: f.module } : {}),
    addr: `0x${f.addr.toString(16)}`,
    ...(f.offset !== undefined ? { offset: f.offset } : {}),
    kernel: f.kernel,
  };
}
