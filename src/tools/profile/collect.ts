// profile's readings: the only code that reads its maps and its ring buffer.
// At the end, `counts` and the stack map are read once, each distinct stack
// symbolized, and the ones that read the same merged (two addresses in one
// function are one frame).
import type { BpfObject } from '../../core/bpf/object.js';
import { StackMap, Symbolizer, foldedFrames, missingStackFrame, type Frame, type Stack } from '../../core/stacks/index.js';
import { profile_pid_event_layout, type SKELETON } from '../../generated/profile.js';

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
  /** Samples not counted, and why (the counts map or the ring of stack copies was full). */
  dropped: number;
  droppedWhy?: string;
}

export class ProfileCollector {
  readonly sym = new Symbolizer();

  /**
   * `kernelOnly`: a sample in user mode has no kernel stack (and no user
   * stack was asked for): it is shown as "[user]", not as a lost stack.
   */
  constructor(private readonly obj: BpfObject<typeof SKELETON>, private readonly kernelOnly = false) {}

  /** A new_pids record, a process's first sample: its mappings now, while it is alive. */
  onNewPid(record: DataView): void {
    this.sym.notePid(profile_pid_event_layout.read(record, 'tgid'));
  }

  read(): Profile {
    const stackMap = StackMap.of(this.obj);
    const counted: CountedStack[] = [];
    for (const [k, v] of this.obj.typedMap('counts').entries()) {
      const st = this.sym.symbolize(k.tgid, stackMap.addresses(k.user_stack), stackMap.addresses(k.kernel_stack));
      const missing = missingStackFrame(k.user_stack, k.kernel_stack, this.kernelOnly ? '[user]' : '[lost stack]');
      if (missing) st.frames.push(missing);
      counted.push({ ...st, comm: k.comm, pid: k.tgid, count: v.value });
    }
    const dropped = this.obj.typedMap('dropped').lookup({ value: 0 })?.value ?? 0;
    return { ...mergeStacks(counted), stackErrors: stackMap.errors(), dropped };
  }
}

/** A symbolized stack and how often one process was sampled in it. */
export interface CountedStack extends Stack {
  comm: string;
  pid: number;
  count: number;
}

/** Stacks that read the same (two addresses in one function are one frame) as one, largest first. */
export function mergeStacks(counted: Iterable<CountedStack>): { samples: number; stacks: ProfiledStack[] } {
  const merged = new Map<string, ProfiledStack>();
  let samples = 0;
  for (const c of counted) {
    samples += c.count;
    const folded = foldedFrames(c.comm, c);
    const key = folded.join(';');
    const had = merged.get(key);
    if (had) {
      had.count += c.count;
      if (!had.pids.includes(c.pid)) had.pids.push(c.pid);
    } else {
      merged.set(key, { comm: c.comm, pids: [c.pid], count: c.count, truncated: c.truncated, frames: c.frames, folded });
    }
  }
  const stacks = [...merged.values()].sort((a, b) => b.count - a.count || (a.folded.join(';') < b.folded.join(';') ? -1 : 1));
  return { samples, stacks };
}
