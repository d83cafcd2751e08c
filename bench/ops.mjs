#!/usr/bin/env node
// bench/ops: what the operator tools cost the work they watch, against the
// equivalent bpftrace program at the same load, in one run.
//
//   opensnoop   a C program doing N openat+close of /dev/null; its CPU time
//               (perf stat task-clock: the work in its syscalls, probes
//               included). rbtrace prints every open (to /dev/null), as
//               bpftrace's printf does.
//   biolatency  N direct 4 KiB reads from a loop device over a file in
//               /dev/shm (dd iflag=direct); dd's wall time (completions run
//               in the block layer's context, not dd's).
//   runqlat     a pipe ping-pong of two processes pinned to one CPU, N round
//               trips (two context switches each); its wall time.
// Each case is the best of R runs; the tracer's own CPU (utime+stime from
// /proc) over the measured runs is printed beside it.
//
//   node bench/ops.mjs [N] [R]        (as root, after npm run build)
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';

const N = Number(process.argv[2] ?? 200000);
const R = Number(process.argv[3] ?? 3);
const root = fileURLToPath(new URL('..', import.meta.url));
const rbtrace = `${root}bin/rbtrace`;
const tmp = `${root}build/tmp`;
mkdirSync(tmp, { recursive: true });

// ---- workloads --------------------------------------------------------------
writeFileSync(`${tmp}/opener.c`, `#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) { for (long i = 0, n = atol(argv[1]); i < n; i++) close(openat(AT_FDCWD, "/dev/null", O_RDONLY)); return 0; }
`);
writeFileSync(`${tmp}/pingpong.c`, `#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
  long n = atol(argv[1]); int a[2], b[2]; char c = 0;
  if (pipe(a) || pipe(b)) return 1;
  if (fork() == 0) { for (long i = 0; i < n; i++) { if (read(a[0], &c, 1) != 1) return 1; if (write(b[1], &c, 1) != 1) return 1; } return 0; }
  for (long i = 0; i < n; i++) { if (write(a[1], &c, 1) != 1) return 1; if (read(b[0], &c, 1) != 1) return 1; }
  return 0;
}
`);
execFileSync('cc', ['-O2', '-o', `${tmp}/opener`, `${tmp}/opener.c`]);
execFileSync('cc', ['-O2', '-o', `${tmp}/pingpong`, `${tmp}/pingpong.c`]);

const img = '/dev/shm/rbtrace-bench-ops.img';
execFileSync('dd', ['if=/dev/zero', `of=${img}`, 'bs=1M', 'count=64'], { stdio: 'ignore' });
const loop = execFileSync('losetup', ['--find', '--show', '--direct-io=on', img], { encoding: 'utf8' }).trim();
const disk = loop.replace('/dev/', '');

function cpuOf(argv) {
  const r = spawnSync('perf', ['stat', '-x,', '-e', 'task-clock', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const m = r.stderr.match(/^([\d.]+),msec,task-clock/m);
  if (!m) throw new Error(`no task-clock from ${argv.join(' ')}: ${r.stderr}`);
  return Number(m[1]) / 1000;
}
function wallOf(argv) {
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
}
const WORK = {
  opensnoop: () => cpuOf([`${tmp}/opener`, String(N)]),
  biolatency: () => wallOf(['dd', `if=${loop}`, 'of=/dev/null', 'bs=4k', `count=${Math.min(N, 16384)}`, 'iflag=direct']),
  runqlat: () => wallOf(['taskset', '-c', '0', `${tmp}/pingpong`, String(N)]),
};
const best = (fn) => { let t = Infinity; for (let i = 0; i < R; i++) t = Math.min(t, fn()); return t; };

function cpuTicks(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch { return 0; }
}

/** Best time of `fn` while the tracer `argv` runs, and the tracer's CPU seconds meanwhile. */
async function under(argv, ready, fn) {
  // Both streams: rbtrace says it is attached on stderr, bpftrace on stdout.
  // Only the tail is kept (a tracer's stdout is every event).
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  let attached = false;
  const seen = (d) => { text = (text + d).slice(-4096); attached ||= ready.test(text); };
  child.stdout.on('data', seen);
  child.stderr.on('data', seen);
  const start = Date.now();
  while (!attached) {
    if (child.exitCode !== null) throw new Error(`${argv.join(' ')} exited: ${text}`);
    if (Date.now() - start > 60000) throw new Error(`${argv.join(' ')} never got ready: ${text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 300));
  const before = cpuTicks(child.pid);
  const t = best(fn);
  const own = (cpuTicks(child.pid) - before) / 100;
  child.kill('SIGINT');
  await new Promise((r) => child.on('close', r));
  return { t, own };
}

const rb = /probes attached/;
const bt = /Attaching \d+ probe/;
const CASES = {
  opensnoop: [
    ['rbtrace opensnoop', [process.execPath, rbtrace, 'opensnoop', '-v'], rb],
    ['bpftrace openat printf', ['bpftrace', '-e', 'tracepoint:syscalls:sys_enter_openat { @f[tid] = args->filename; } tracepoint:syscalls:sys_exit_openat /@f[tid]/ { printf("%d %s %s %d\\n", pid, comm, str(@f[tid]), args->ret); delete(@f[tid]); }'], bt],
  ],
  biolatency: [
    ['rbtrace biolatency -D -F', [process.execPath, rbtrace, 'biolatency', '-v', '-D', '-F'], rb],
    ['bpftrace biolatency (issue/complete)', ['bpftrace', '-e', 'tracepoint:block:block_rq_issue { @s[args->dev, args->sector] = nsecs; } tracepoint:block:block_rq_complete /@s[args->dev, args->sector]/ { @[args->dev] = hist((nsecs - @s[args->dev, args->sector]) / 1000); delete(@s[args->dev, args->sector]); }'], bt],
  ],
  runqlat: [
    ['rbtrace runqlat', [process.execPath, rbtrace, 'runqlat', '-v'], rb],
    ['bpftrace runqlat (wakeup/switch)', ['bpftrace', '-e', 'tracepoint:sched:sched_wakeup,tracepoint:sched:sched_wakeup_new { @q[args->pid] = nsecs; } tracepoint:sched:sched_switch { if (args->prev_state == 0) { @q[args->prev_pid] = nsecs; } $ns = @q[args->next_pid]; if ($ns) { @usecs = hist((nsecs - $ns) / 1000); } delete(@q[args->next_pid]); }'], bt],
  ],
};

try {
  for (const [tool, cases] of Object.entries(CASES)) {
    const plain = best(WORK[tool]);
    console.log(`\n${tool}: ${tool === 'opensnoop' ? `${N} openat+close, the program's CPU time` : tool === 'biolatency' ? `${Math.min(N, 16384)} direct 4 KiB reads of ${disk}, dd's wall time` : `${N} pipe round trips on one CPU (${2 * N} context switches), wall time`}; best of ${R}`);
    console.log(`  ${'plain'.padEnd(40)} ${plain.toFixed(3).padStart(8)} s`);
    const got = {};
    for (const [name, argv, ready] of cases) {
      const { t, own } = await under(argv, ready, WORK[tool]);
      got[name] = t;
      console.log(`  ${name.padEnd(40)} ${t.toFixed(3).padStart(8)} s  ${(t / plain).toFixed(2).padStart(6)}x plain   tracer's own CPU ${own.toFixed(2)} s`);
    }
    const [a, b] = cases.map(([name]) => got[name] - plain);
    console.log(`  extra time, rbtrace / bpftrace: ${(a / b).toFixed(2)} (target <= 1: no worse)`);
  }
} finally {
  execFileSync('losetup', ['-d', loop]);
  rmSync(img, { force: true });
}
