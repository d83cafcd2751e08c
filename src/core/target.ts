// What to trace: everything, one process (-p PID), or a command started by
// rbtrace and its descendants (-- CMD ARGS); and, with any of these, only
// tasks in one cgroup v2 directory (--cgroup DIR). The BPF side of this
// lives in src/bpf/include/rbtrace.bpf.h (rbtrace_wanted()).
import { closeSync, openSync } from 'node:fs';
import type { BpfObject, BpfLink } from './bpf/object.js';
import { RbtraceError } from './errors.js';
import type { CgroupDir } from './linux/cgroup.js';
import { checkPidExists } from './linux/process.js';
import { GatedCommand, type ExitStatus } from './linux/gate.js';
import { UsageError } from './errors.js';
import { watchPid, type PidWatch } from './linux/pidwatch.js';
import { RunAs } from './linux/user.js';
import { DEFINES, type MapName, type ProgramName, type Rodata } from '../generated/rbtrace.js';

// rbtrace.bpf.h's names, in every tool's object: checked against its skeleton.
const FOLLOW_PROGRAMS: ProgramName[] = ['rbtrace_fork', 'rbtrace_exec', 'rbtrace_exit'];
const TRACED: MapName = 'rbtrace_traced';
const CGROUP: MapName = 'rbtrace_cgroup';
/** rbtrace_traced's value for the command's pid until its exec. */
const FOLLOW_PENDING = DEFINES.RBTRACE_FOLLOW_PENDING;

export class Target {
  readonly pid?: number;
  readonly command?: GatedCommand;
  /** --cgroup DIR (set by fromOptions). */
  cgroup?: CgroupDir;

  private constructor(pid?: number, command?: GatedCommand) {
    this.pid = pid;
    this.command = command;
  }

  static all(): Target {
    return new Target();
  }

  static pid(pid: number): Target {
    checkPidExists(pid);
    return new Target(pid);
  }

  /** Starts the command held before exec (as `user`, if given); call release() once probes are attached. */
  static command(argv: string[], user?: string): Target {
    return new Target(undefined, new GatedCommand(argv, user === undefined ? undefined : RunAs.lookup(user)));
  }

  static fromOptions(opts: { pid?: number; command?: string[]; user?: string; cgroup?: CgroupDir }): Target {
    if (opts.pid !== undefined && opts.command?.length) {
      throw new UsageError('-p and -- CMD cannot be used together', 'trace a running process with -p, or start one with -- CMD');
    }
    if (opts.user !== undefined && !opts.command?.length) {
      throw new UsageError('--user applies to a command started with -- CMD', 'e.g. rbtrace execsnoop --user nobody -- make');
    }
    const t = opts.command?.length ? Target.command(opts.command, opts.user) : opts.pid !== undefined ? Target.pid(opts.pid) : Target.all();
    t.cgroup = opts.cgroup;
    return t;
  }

  /** The process id filters apply to (the command's, once started). */
  get tgid(): number | undefined {
    return this.command?.pid ?? this.pid;
  }

  get following(): boolean {
    return this.command !== undefined;
  }

  /** .rodata values for rbtrace.bpf.h. */
  rodata(): Partial<Rodata> {
    return { rbtrace_targ_tgid: this.pid ?? 0, rbtrace_targ_follow: this.following, ...this.cgroupRodata() };
  }

  private cgroupRodata(): Partial<Rodata> {
    return this.cgroup ? { rbtrace_targ_cgroup: true } : {};
  }

  /** Programs to load besides the tool's own. */
  extraPrograms(): string[] {
    return this.following ? FOLLOW_PROGRAMS : [];
  }

  /**
   * After load: start tracking the command. Its pid is still the gate (a
   * launcher waiting to exec it), so it goes in as pending: the BPF side starts
   * counting, and passing tracing on to children, at its exec.
   */
  attach(obj: BpfObject): BpfLink[] {
    if (this.cgroup) this.attachCgroup(obj);
    if (!this.command) return [];
    const traced = obj.map(TRACED);
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, this.command.pid, true);
    traced.updateRaw(key, new Uint8Array([FOLLOW_PENDING]));
    return FOLLOW_PROGRAMS.map((name) => obj.program(name).attach());
  }

  /** --cgroup: the directory goes into rbtrace_cgroup by fd (the map keeps its own reference). */
  private attachCgroup(obj: BpfObject): void {
    const dir = this.cgroup!;
    let fd: number;
    try {
      fd = openSync(dir.path, 'r');
    } catch (err) {
      throw new RbtraceError(`--cgroup ${dir.path}: cannot open it: ${(err as NodeJS.ErrnoException).code}`);
    }
    try {
      const key = new Uint8Array(4);
      const value = new Uint8Array(4);
      new DataView(value.buffer).setUint32(0, fd, true);
      obj.map(CGROUP).updateRaw(key, value);
    } finally {
      closeSync(fd);
    }
  }

  /** Let the command run (probes are in place). */
  release(): void {
    this.command?.release();
  }

  get exited(): Promise<ExitStatus> | undefined {
    return this.command?.exited;
  }

  /**
   * The end of the target, for every tool alike: the command's exit (with
   * its status), or the -p process going away (status 0). undefined when
   * tracing the whole system. close() the watch when the session ends.
   */
  watchExit(): PidWatch | undefined {
    if (this.command) return { exited: this.command.exited, close: () => {} };
    if (this.pid !== undefined) return watchPid(this.pid);
    return undefined;
  }
}
