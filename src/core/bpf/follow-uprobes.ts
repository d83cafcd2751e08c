// Uprobes and USDT for -- CMD, on the command's processes only.
//
// A uprobe attached without a pid is put by the kernel in every process
// mapping the file, and a USDT semaphore is raised in each: while
// `rbtrace mallocstat -- cmd` ran, an unrelated process's malloc/free loop
// took 377 times as long (0.022 s -> 8.3 s), and an unrelated ruby's string
// allocations 75 times (rubyobjnew). Filtering in BPF does not help: the trap
// is the cost. So the probes go on the command's pid before it is released
// (its exec keeps the pid: the command is traced from its first
// instruction), and on each descendant as the fork tracker (rbtrace_traced,
// rbtrace.bpf.h) reports it, detached when it is gone. A forked child
// inherits its parent's breakpoints, which the kernel removes at the child's
// first hit (they are not its own): its events until rbtrace attaches to it,
// within FOLLOW_POLL_MS of its fork, are not seen (--all-processes: the
// probes on every process, as the kernel does without a pid, BPF picking out
// the command's: exact for children, at that cost to the host).
import type { BpfLink, BpfObject } from './object.js';
import type { Session } from '../session.js';
import { DEFINES, type MapName } from '../../generated/rbtrace.js';

// rbtrace.bpf.h's fork tracker, in every tool's object.
const TRACED: MapName = 'rbtrace_traced';

/** How often the fork tracker's map is read for new descendants. */
export const FOLLOW_POLL_MS = 10;

export class CommandProbeFollower {
  private readonly attached = new Map<number, BpfLink[]>();
  private readonly refused = new Set<number>();
  private timer?: NodeJS.Timeout;
  /** Descendants probed since the start: each from when it was seen, not its first call. */
  followed = 0;

  constructor(
    private readonly obj: BpfObject,
    /** The command's pid: attached at load, never again. */
    private readonly root: number,
    private readonly attach: (pid: number) => BpfLink[],
    private readonly log: (line: string) => void,
  ) {}

  start(session: Session): void {
    this.timer = setInterval(() => {
      try {
        this.scan();
      } catch (err) {
        session.fail(err);
      }
    }, FOLLOW_POLL_MS);
    session.own(this);
  }

  /** Descendants the fork tracker knows: attach to new ones, let go of gone ones. */
  scan(): void {
    const live = new Set<number>();
    const traced = this.obj.map(TRACED);
    for (const key of traced.keysRaw()) {
      const value = traced.lookupRaw(key);
      if (!value) continue;
      const tgid = new DataView(key.buffer, key.byteOffset).getUint32(0, true);
      if (tgid === this.root || value[0] !== DEFINES.RBTRACE_FOLLOW_TRACED) continue;
      live.add(tgid);
      if (this.attached.has(tgid) || this.refused.has(tgid)) continue;
      try {
        this.attached.set(tgid, this.attach(tgid));
        this.followed++;
        this.log(`probes attached to the command's process ${tgid}`);
      } catch (err) {
        // Gone already, most often: a short-lived child.
        this.refused.add(tgid);
        this.log(`cannot attach to the command's process ${tgid} (${(err as Error).message})`);
      }
    }
    for (const [tgid, links] of this.attached) {
      if (live.has(tgid)) continue;
      for (const l of links) l.destroy();
      this.attached.delete(tgid);
    }
    for (const tgid of this.refused) if (!live.has(tgid)) this.refused.delete(tgid);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const links of this.attached.values()) for (const l of links) l.destroy();
    this.attached.clear();
  }
}

/** The option of every tool with user probes that follows a command's children. */
export const ALL_PROCESSES_OPTION = ['--all-processes',
  'with -- CMD: probes in every process mapping the binary, BPF picking out the command\'s (its children counted from their first call, but every process on the host traps while rbtrace runs); default: the command\'s processes only'] as const;
