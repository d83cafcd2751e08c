// `-- CMD`: start the command held before exec, so that probes are attached
// before it runs a single instruction of its own; and make sure it never
// outlives rbtrace untraced.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Duplex } from 'node:stream';
import { RbtraceError, UsageError } from '../errors.js';
import { bashLauncher, perlLauncher } from './gate-launcher.js';
import { makeLeash } from './leash.js';
import { resolveCommand } from './process.js';
import type { RunAs } from './user.js';

export interface ExitStatus {
  /** Shell-style status: the exit code, or 128 + signal number. */
  status: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * The file descriptors rbtrace was given, read before anything of ours opens
 * one. Node marks fds 3..16 close-on-exec at start-up, so without this a command started by rbtrace would
 * lose the fds it was given (`rbtrace syscount -- cmd 3<file`). bin/rbtrace
 * reads the table before any module can open an fd; Node's own fds at that
 * point are event loops (anon inodes) and pipes whose two ends are both
 * open; everything else was inherited.
 */
const STARTUP_FDS = classifyFds(
  (globalThis as { __rbtraceStartupFds?: FdEntry[] }).__rbtraceStartupFds ?? readFdTable(),
);

/** One fd of /proc/self/fd: bin/rbtrace reads the table first thing, in the same form. */
export interface FdEntry {
  fd: number;
  target: string;
  flags: number;
}

/**
 * fds > 2 to hand on at the same number (Node made them close-on-exec).
 * (A closed 0, 1 or 2 cannot be told apart: Node opens /dev/null there at
 * start-up, as libuv does for a child's ignored stdio, so the command gets
 * /dev/null as rbtrace did.)
 */
interface FdSnapshot {
  pass: number[];
}

/** This process's fds now (when bin/rbtrace did not read them first: an SDK user's own entry point). */
function readFdTable(): FdEntry[] {
  const table: FdEntry[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    // no /proc
  }
  for (const e of entries) {
    try {
      const target = readlinkSync(`/proc/self/fd/${e}`);
      const m = readFileSync(`/proc/self/fdinfo/${e}`, 'utf8').match(/^flags:\s*([0-7]+)/m);
      table.push({ fd: Number(e), target, flags: m ? parseInt(m[1], 8) : 0 });
    } catch {
      // the directory fd readdirSync used, already closed
    }
  }
  return table;
}

export function classifyFds(table: FdEntry[]): FdSnapshot {
  const snap: FdSnapshot = { pass: [] };
  const O_ACCMODE = 3, O_CLOEXEC = 0o2000000;
  // A pipe whose read end and write end are both here is one of Node's own
  // (libuv's wake-up pipes); an inherited pipe comes with one end (perhaps twice: 3>&1).
  const ends = new Map<string, Set<number>>();
  for (const { fd, target, flags } of table) {
    if (fd > 2 && target.startsWith('pipe:')) ends.set(target, (ends.get(target) ?? new Set()).add(flags & O_ACCMODE));
  }
  for (const { fd, target, flags } of table) {
    if (fd <= 2) continue;
    if (target.startsWith('anon_inode:')) continue;
    if ((ends.get(target)?.size ?? 0) > 1) continue;
    if (flags & O_CLOEXEC) snap.pass.push(fd);
  }
  snap.pass.sort((x, y) => x - y);
  return snap;
}

const SETPRIV = '/usr/bin/setpriv';

/**
 * A command started but held before exec: its process exists (so its pid
 * can be put into BPF filters) and runs `argv` only once release() is called.
 * The hold (gate-launcher.ts: perl with an empty environment, or `bash -p`;
 * nothing of the user's runs as root in it but the command) waits on a
 * socket, then execs the command (same pid, no extra fork). setpriv in
 * front of it sets the user (--user) and a parent-death signal: if rbtrace
 * dies without stopping the command (SIGKILL, a crash), the kernel kills
 * the command too.
 */
/**
 * The kernel execs an ELF file or a `#!` script; anything else fails with
 * ENOEXEC, and bash's `exec` then runs the file as a shell script in the gate
 * itself: no exec happens, so counting (which starts at the command's exec)
 * never would (the perl gate fails with 126). Refuse it first, as strace
 * does ("Exec format error").
 */
function checkExecFormat(name: string, path: string): void {
  const head = Buffer.alloc(4);
  let n = 0;
  try {
    const fd = openSync(path, 'r');
    try {
      n = readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return; // unreadable (execute-only): let the kernel decide at exec
  }
  const elf = n === 4 && head[0] === 0x7f && head.toString('latin1', 1, 4) === 'ELF';
  const script = n >= 2 && head[0] === 0x23 && head[1] === 0x21; // "#!"
  if (!elf && !script) {
    throw new RbtraceError(`cannot run ${name}: exec format error (neither an ELF binary nor a #! script)`, {
      hint: 'add a #! line, or run it through its interpreter: -- sh SCRIPT',
    });
  }
}

export class GatedCommand {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  /** Resolves once the gate is up (setpriv done, the gate waiting), or rejects saying why not. */
  readonly ready: Promise<void>;
  private readonly child: ChildProcess;
  /** Our end of the gate's socket (a socketpair: the gate says "ready" on it, we say "go"). */
  private readonly gate: Duplex;
  private status?: ExitStatus;
  /** What release() says on the gate's socket. */
  private readonly go: Buffer;
  /** Does the kernel kill the command when rbtrace dies? (setpriv present) */
  readonly diesWithRbtrace: boolean;
  /** What ends the command and its descendants if rbtrace dies (leash.ts), for -v. */
  readonly leash: string;

  constructor(readonly argv: string[], runAs?: RunAs) {
    if (argv.length === 0) throw new UsageError('nothing to run after --', 'e.g. rbtrace execsnoop -- ls -l');
    if (!resolveCommand(argv[0])) {
      throw new RbtraceError(`command not found: ${argv[0]}`, { hint: 'check the name, or give its full path' });
    }
    // The gate runs the resolved file with argv[0] exactly as the user
    // wrote it, so the command sees the argv it was given and no failed
    // PATH lookups show up in the trace.
    const path = resolveCommand(argv[0])!;
    checkExecFormat(argv[0], path);
    const { pass } = STARTUP_FDS;
    // The gate's socket goes on the first fd number the command is not given.
    let gateFd = 3;
    while (pass.includes(gateFd)) gateFd++;
    const stdio: StdioOptions = ['inherit', 'inherit', 'inherit'];
    for (const fd of pass) stdio[fd] = fd;
    for (let i = 3; i < gateFd; i++) stdio[i] ??= 'ignore';
    stdio[gateFd] = 'pipe';
    for (let i = 3; i < stdio.length; i++) stdio[i] ??= 'ignore';

    // The command gets the environment rbtrace got (gate-launcher.ts: the
    // perl gate exactly; the bash gate as spawn() passes process.env, but
    // for SHLVL and the order).
    const launcher = perlLauncher(path, argv, gateFd, process.env) ?? bashLauncher(path, argv, gateFd, process.env);
    this.go = launcher.go;

    this.diesWithRbtrace = existsSync(SETPRIV);
    if (runAs && !this.diesWithRbtrace) throw new RbtraceError('--user needs setpriv', { hint: 'install util-linux' });
    const front = this.diesWithRbtrace ? [SETPRIV, ...(runAs?.setprivArgs() ?? []), '--pdeathsig', 'SIGKILL', '--'] : [];
    const [file, ...args] = [...front, ...launcher.argv];
    const leash = makeLeash();
    this.child = spawn(file, args, { stdio, env: launcher.env });
    if (this.child.pid === undefined) throw new RbtraceError(`cannot start ${argv[0]}`);
    this.pid = this.child.pid;
    // Held at the gate: nothing of the command has run, nothing has forked.
    if ('dir' in leash) {
      try {
        leash.hold(this.pid);
        this.leash = `cgroup ${leash.dir}`;
      } catch (err) {
        this.leash = `the parent-death signal only (cannot move it into ${leash.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
      }
    } else {
      this.leash = `the parent-death signal only (${leash.reason})`;
    }
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        const signo = signal ? signalNumber(signal) : 0;
        this.status = { status: code ?? 128 + signo, code, signal };
        resolve(this.status);
      });
    });
    const gate = (this.gate = this.child.stdio[gateFd] as unknown as Duplex);
    this.ready = new Promise((resolve, reject) => {
      gate.once('data', () => resolve());
      this.exited.then((st) => reject(new RbtraceError(`cannot start ${argv[0]}: the command's launcher exited with status ${st.status}`, {
        hint: runAs ? 'check --user' : 'see the message above',
      })));
    });
    this.ready.catch(() => {});
    // The gate's socket is our end: losing it must not raise or keep Node alive.
    gate.on('error', () => {});
    process.on('exit', this.onRbtraceExit);
  }

  /** Still running (or not yet reaped)? */
  get running(): boolean {
    return this.status === undefined;
  }

  release(): void {
    this.gate.write(this.go);
    this.gate.end();
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.running) return;
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }

  /**
   * Stop the command: `signal`, then SIGKILL if it is still there after
   * graceMs. Resolves with its exit status.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<ExitStatus> {
    if (this.status) return this.status;
    this.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return this.exited;
  }

  /**
   * Is the command in the foreground process group of its terminal? Then a
   * key that sends SIGINT or SIGQUIT (Ctrl-C, Ctrl-\) already reached it.
   */
  inTerminalForeground(): boolean {
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields 5 (pgrp), 7 (tty_nr), 8 (tpgid), counted from 1 with pid and comm
      const pgrp = Number(f[2]), ttyNr = Number(f[4]), tpgid = Number(f[5]);
      return ttyNr !== 0 && tpgid > 0 && pgrp === tpgid;
    } catch {
      return false;
    }
  }

  /** Whatever ends rbtrace, the command does not run on untraced. */
  private readonly onRbtraceExit = (): void => {
    this.kill('SIGKILL');
  };
}

function signalNumber(signal: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number>)[signal] ?? 0;
}
