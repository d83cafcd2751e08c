// Notice when a process traced with -p PID ends, so that the session can
// print its final report instead of waiting for a Ctrl-C that nobody will
// send (the kernel has nothing more to say about a dead pid). A rule of the
// Target (target.ts), true of every tool. Polls /proc: a zombie (state Z or
// X) counts as ended, since it makes no more syscalls.
import { readFileSync } from 'node:fs';
import type { ExitStatus } from './gate.js';

/** true while /proc/PID exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export interface PidWatch {
  /** Resolves (status 0: the status of a process we did not start is not ours to know) once `pid` is gone. */
  exited: Promise<ExitStatus>;
  close(): void;
}

/** Watch `pid`; the timer does not keep Node alive. */
export function watchPid(pid: number, everyMs = 200): PidWatch {
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    timer = setInterval(() => {
      if (pidAlive(pid)) return;
      clearInterval(timer);
      resolve({ status: 0, code: 0, signal: null });
    }, everyMs);
    timer.unref();
  });
  return { exited, close: () => clearInterval(timer) };
}
