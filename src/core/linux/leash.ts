// `-- CMD` must not outlive rbtrace. setpriv's parent-death signal covers
// the command only until it execs a setuid binary (the kernel clears the
// signal then: `-- newgrp u` and the shell it starts ran on untraced after a
// SIGKILLed rbtrace), and never covered what the command starts. So the
// command goes into a cgroup v2 directory of its own, which it and its
// descendants cannot leave (moving needs write access to the common
// ancestor's cgroup.procs: root's), and a watchdog outside it waits for
// rbtrace's end of a pipe to close, however rbtrace ends, then kills every
// process in it and removes it:
//   - 5.14 and later: cgroup.kill, one write, atomic against forks;
//   - 5.2 to 5.13: cgroup.freeze (a frozen process cannot fork; SIGKILL
//     still ends it), then SIGKILL to every pid in cgroup.procs, until empty;
//   - no cgroup v2 mounted, or its directory not writable (a container):
//     only the parent-death signal, as before (man rbtrace, SECURITY).
import { spawn } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { cgroupLayout, cgroupOfPid } from './cgroup.js';

// $1: the cgroup directory; $2: "freeze" to take the pre-5.14 way (a test
// knob: RBTRACE_LEASH=freeze). stdin: rbtrace's pipe (EOF: rbtrace is gone).
const WATCHDOG = String.raw`
cg=$1
cat >/dev/null
if [ "$2" = freeze ] || ! echo 1 > "$cg/cgroup.kill" 2>/dev/null; then
  echo 1 > "$cg/cgroup.freeze" 2>/dev/null
  i=0
  while p=$(cat "$cg/cgroup.procs" 2>/dev/null) && [ -n "$p" ] && [ $i -lt 400 ]; do
    kill -9 $p 2>/dev/null
    sleep 0.05
    i=$((i + 1))
  done
fi
i=0
until rmdir "$cg" 2>/dev/null || [ $i -ge 200 ]; do sleep 0.05; i=$((i + 1)); done
`;

export interface Leash {
  /** The command's cgroup directory (absolute path). */
  dir: string;
  /** Put a process (the held command, before it execs) into it. */
  hold(pid: number): void;
}

/**
 * A cgroup directory and its watchdog, or why not (the caller falls back to
 * the parent-death signal alone). Made before the command starts.
 */
export function makeLeash(): Leash | { reason: string } {
  const layout = cgroupLayout();
  if (!layout.v2Mount) return { reason: 'no cgroup v2 hierarchy mounted' };
  // A child of rbtrace's own cgroup: the command stays under the limits rbtrace runs under.
  const own = cgroupOfPid(process.pid) ?? '/';
  const dir = join(layout.v2Mount, own, `rbtrace-cmd-${process.pid}-${Date.now().toString(36)}`);
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (err) {
    return { reason: `cannot make ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  let watchdog;
  try {
    // Its own session: Ctrl-C and a kill of rbtrace's process group leave it to do its job.
    watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'rbtrace-watchdog', dir, process.env.RBTRACE_LEASH === 'freeze' ? 'freeze' : 'kill'], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  } catch (err) {
    rmdirSync(dir);
    return { reason: `cannot start the watchdog: ${(err as Error).message}` };
  }
  watchdog.on('error', () => {});
  watchdog.unref();
  // Our end of its pipe: never written, closed by the kernel when rbtrace ends; it must not keep Node alive.
  (watchdog.stdin as Socket | null)?.unref?.();
  watchdog.stdin?.on('error', () => {});
  return {
    dir,
    hold(pid: number) {
      writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
    },
  };
}
