// `-- CMD`: start the command held before exec, so that probes are attached
// before it runs a single instruction of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { RbtraceError, UsageError } from './errors.js';
import { resolveCommand } from './process.js';

export interface ExitStatus {
  /** Shell-style status: the exit code, or 128 + signal number. */
  status: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A command started but held before exec: its process exists (so its pid
 * can be put into BPF filters) and runs `argv` only once release() is called.
 * The hold is a bash waiting on a pipe, which then execs the command
 * (same pid, no extra fork).
 */
export class GatedCommand {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  private readonly child: ChildProcess;

  constructor(readonly argv: string[]) {
    if (argv.length === 0) throw new UsageError('nothing to run after --', 'e.g. rbtrace execsnoop -- ls -l');
    if (!resolveCommand(argv[0])) {
      throw new RbtraceError(`command not found: ${argv[0]}`, { hint: 'check the name, or give its full path' });
    }
    // bash's `exec -a` runs the resolved file with argv[0] exactly as the
    // user wrote it, so the command sees the argv it was given and no failed
    // PATH lookups show up in the trace.
    const path = resolveCommand(argv[0])!;
    this.child = spawn('/bin/bash', ['-c', 'read -r _ <&3 || exit 126; exec 3<&- -a "$1" "$0" "${@:2}"', path, ...argv], {
      stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    });
    if (this.child.pid === undefined) throw new RbtraceError(`cannot start ${argv[0]}`);
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        const signo = signal ? signalNumber(signal) : 0;
        resolve({ status: code ?? 128 + signo, code, signal });
      });
    });
  }

  release(): void {
    const gate = this.child.stdio[3] as NodeJS.WritableStream | null;
    gate?.write('go\n');
    gate?.end();
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  return (osConstants.signals as Record<string, number>)[signal] ?? 0;
}
