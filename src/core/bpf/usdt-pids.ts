// USDT where the kernel has no BPF cookies (before 5.15): libbpf then tells
// the probes of a shared library apart by their address in one process, so
// it attaches there only with a pid ("attaching to shared libraries without
// specific PID is not supported on current kernel"). Without a pid to give,
// a tool attaches per process instead: each process mapping the library now,
// and each new one as it maps it (polled), detaching as they go.
import { readFileSync, readdirSync, realpathSync } from 'node:fs';
import { libbpf } from '../ffi/libbpf.js';
import { exePath } from '../linux/procfiles.js';
import type { BpfLink } from './object.js';
import type { Session } from '../session.js';

const BPF_PROG_TYPE_KPROBE = 2;
const BPF_FUNC_get_attach_cookie = 174;

let cookies: boolean | undefined;
/** bpf_get_attach_cookie() (Linux 5.15+): what libbpf's USDT needs to attach without a pid. */
export function hasBpfCookie(): boolean {
  cookies ??= libbpf.probeHelper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_attach_cookie, null) === 1;
  return cookies;
}

/** How often new processes are looked for. */
export const PER_PROCESS_POLL_MS = 100;
const RECHECKS = 20;

export interface PerProcessOptions {
  /** The library (or executable) holding the probes. */
  binary: string;
  /** Attach every probe to one process; throws if it cannot. */
  attach: (pid: number) => BpfLink[];
  /** Candidate pids (default: every process); rbtrace itself is never one. */
  candidates?: () => Iterable<number>;
  log?: (line: string) => void;
}

/** Per-process USDT attachment, polled; close() detaches everything. */
export class PerProcessUsdt {
  private readonly attached = new Map<number, BpfLink[]>();
  /**
   * pid -> the executable it ran when last looked at, and how often its maps
   * were read since: a process that does not map the library is looked at
   * for its first RECHECKS scans after each exec (the dynamic linker maps
   * libraries just after it), then no more until its next exec.
   */
  private readonly seen = new Map<number, { exe: string; checks: number }>();
  private readonly target: string;
  private timer?: NodeJS.Timeout;

  constructor(private readonly opts: PerProcessOptions) {
    this.target = realpathSync(opts.binary);
  }

  get pids(): number[] {
    return [...this.attached.keys()];
  }

  start(session: Session): void {
    this.scan();
    this.timer = setInterval(() => this.scan(), PER_PROCESS_POLL_MS);
    session.own(this);
  }

  scan(): void {
    const live = new Set<number>();
    for (const pid of this.opts.candidates?.() ?? allPids()) {
      if (pid === process.pid) continue;
      live.add(pid);
      if (this.attached.has(pid)) continue;
      const exe = exePath(pid);
      if (exe === undefined) continue;
      const before = this.seen.get(pid);
      const checks = before?.exe === exe ? before.checks + 1 : 0;
      if (checks >= RECHECKS) continue;
      if (!this.maps(pid)) {
        this.seen.set(pid, { exe, checks });
        continue;
      }
      try {
        this.attached.set(pid, this.opts.attach(pid));
        this.opts.log?.(`attached to process ${pid}`);
      } catch (err) {
        this.opts.log?.(`cannot attach to process ${pid} (${(err as Error).message})`);
        this.seen.set(pid, { exe, checks: RECHECKS });
      }
    }
    for (const [pid, links] of this.attached) {
      if (live.has(pid)) continue;
      for (const l of links) l.destroy();
      this.attached.delete(pid);
    }
    for (const pid of this.seen.keys()) if (!live.has(pid)) this.seen.delete(pid);
  }

  private maps(pid: number): boolean {
    try {
      return readFileSync(`/proc/${pid}/maps`, 'utf8').includes(this.target);
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const links of this.attached.values()) for (const l of links) l.destroy();
    this.attached.clear();
  }
}

function allPids(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

