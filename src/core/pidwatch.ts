// Notice when a process traced with -p PID ends, so that a tool can print its
// final report instead of waiting for a Ctrl-C that nobody will send (the
// kernel has nothing more to say about a dead pid). Polls /proc: a zombie
// (state Z or X) counts as ended, since it makes no more syscalls.
import { readFileSync } from 'node:fs';
import type { Session } from './session.js';

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

/**
 * Stop the session (reason 'target-exit', exit status 0) once `pid` is gone.
 * The timer is owned by the session and does not keep Node alive.
 */
export function stopWhenPidExits(session: Session, pid: number, onExit?: () => void, everyMs = 200): void {
  const timer = setInterval(() => {
    if (pidAlive(pid)) return;
    clearInterval(timer);
    onExit?.();
    session.stop('target-exit');
  }, everyMs);
  timer.unref();
  session.own({ close: () => clearInterval(timer) });
}
