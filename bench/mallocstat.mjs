#!/usr/bin/env node
// bench/mallocstat: what one probed allocator call costs.
//
// The workload: a C program that, once told to go (a byte on stdin, so that
// tracers attach first), runs N iterations of malloc(32)/free: 2N probed
// calls. Its time is the CPU time of that loop (CLOCK_PROCESS_CPUTIME_ID,
// which includes the uprobe traps handled in its context), printed by the
// program itself, so tracer start-up and waiting for a CPU on a busy machine
// do not count. Each case: the best of R runs. Cases, all attached to the
// one process (-p), with the same eight functions probed:
//   plain;
//   rbtrace mallocstat -p PID            (counts, sizes; realloc timed)
//   rbtrace mallocstat -L -p PID         (every function timed: uretprobes too)
//   bpftrace -p PID 'uprobe:libc:malloc,... { }'  (the floor: traps, no work)
//   bpftrace -p PID 'uprobe:libc:malloc,... { @[probe] = count(); }'
// Prints the cost per probed call (traced - plain) / 2N and the ratio to
// bpftrace. That figure is mostly the trap into the kernel (the floor) and is
// noisy on a shared machine, so the time spent in the BPF programs
// themselves is measured too (kernel.bpf_stats_enabled: run_time_ns /
// run_cnt of the tracer's programs, over the loop): the part a tool controls.
//
//   node bench/mallocstat.mjs [N] [R]      (as root, after npm run build)
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const N = Number(process.argv[2] ?? 200000);
const R = Number(process.argv[3] ?? 3);
const root = fileURLToPath(new URL('..', import.meta.url));
const rbtrace = `${root}bin/rbtrace`;

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-bench-'));
writeFileSync(join(dir, 'loop.c'), `
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  long n = atol(argv[1]);
  char c;
  if (read(0, &c, 1) != 1) return 1;
  struct timespec a, b;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
  for (long i = 0; i < n; i++) {
    void *volatile p = malloc(32);
    free(p);
  }
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
  printf("%.9f\\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
`);
const loop = join(dir, 'loop');
execFileSync('cc', ['-O2', '-o', loop, join(dir, 'loop.c')]);

const libc = execFileSync('sh', ['-c', "ldd /bin/true | awk '/libc.so/ {print $3}'"], { encoding: 'utf8' }).trim();
const FUNCS = ['malloc', 'calloc', 'realloc', 'reallocarray', 'free', 'posix_memalign', 'aligned_alloc', 'memalign'];

/** run_time_ns and run_cnt of the loaded programs whose name `pick` accepts. */
function progStats(pick) {
  const progs = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 1 << 26 }));
  let ns = 0;
  let cnt = 0;
  for (const p of progs) {
    if (!pick(p.name ?? '')) continue;
    ns += p.run_time_ns ?? 0;
    cnt += p.run_cnt ?? 0;
  }
  return { ns, cnt };
}

/** One run of the loop; `tracer(pid)` gives argv, a regex telling that it is attached, and its programs' names. */
async function once(tracerName, tracer) {
  const prog = spawn(loop, [String(N)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  prog.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const progDone = new Promise((resolve) => prog.on('close', resolve));
  if (tracer) {
    const { argv, ready } = tracer(prog.pid);
    const tr = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    tr.stdout.setEncoding('utf8').on('data', (d) => (text += d));
    tr.stderr.setEncoding('utf8').on('data', (d) => (text += d));
    const trDone = new Promise((resolve) => tr.on('close', resolve));
    const start = Date.now();
    while (!ready.test(text)) {
      if (tr.exitCode !== null || Date.now() - start > 30000) throw new Error(`${argv.join(' ')} did not attach:\n${text}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const before = progStats(tracer(0).progs);
    prog.stdin.end('g');
    await progDone;
    const after = progStats(tracer(0).progs);
    bpfNs[tracerName] = Math.min(bpfNs[tracerName] ?? Infinity, (after.ns - before.ns) / Math.max(1, after.cnt - before.cnt));
    tr.kill('SIGINT');
    await trDone;
  } else {
    prog.stdin.end('g');
    await progDone;
  }
  const t = Number(out.trim());
  if (!(t > 0)) throw new Error(`no time from the loop: '${out}'`);
  return t;
}


const cases = [
  ['plain', undefined],
  ['rbtrace mallocstat', (pid) => ({ argv: [process.execPath, rbtrace, 'mallocstat', '-v', '-p', String(pid)], ready: /probes attached, tracing/, progs: (n) => n.startsWith('ms_') })],
  ['rbtrace mallocstat -L', (pid) => ({ argv: [process.execPath, rbtrace, 'mallocstat', '-L', '-v', '-p', String(pid)], ready: /probes attached, tracing/, progs: (n) => n.startsWith('ms_') })],
  ['bpftrace empty (floor)', (pid) => ({
    // the trap alone: the same probes, no work in them
    argv: ['bpftrace', '-p', String(pid), '-e', `BEGIN { printf("READY\\n"); } ${FUNCS.map((f) => `uprobe:${libc}:${f}`).join(',')} { }`],
    ready: /READY/,
    progs: (n) => FUNCS.includes(n),
  })],
  ['bpftrace count', (pid) => ({
    // BEGIN runs once every probe is attached ("Attaching N probes" comes before).
    argv: ['bpftrace', '-p', String(pid), '-e', `BEGIN { printf("READY\\n"); } ${FUNCS.map((f) => `uprobe:${libc}:${f}`).join(',')} { @[probe] = count(); }`],
    ready: /READY/,
    progs: (n) => FUNCS.includes(n),
  })],
];

const statsWas = execFileSync('sysctl', ['-n', 'kernel.bpf_stats_enabled'], { encoding: 'utf8' }).trim();
execFileSync('sysctl', ['-qw', 'kernel.bpf_stats_enabled=1']);
process.on('exit', () => execFileSync('sysctl', ['-qw', `kernel.bpf_stats_enabled=${statsWas}`]));
console.log(`mallocstat bench: ${N} x malloc(32)/free = ${2 * N} probed calls, best of ${R}, CPU time of the loop`);
// Rounds go through every case in turn, so that a busy spell of the machine
// does not fall on one case only; each case keeps its best run.
const bpfNs = {};
const results = Object.fromEntries(cases.map(([name]) => [name, Infinity]));
for (let i = 0; i < R; i++) {
  for (const [name, tracer] of cases) results[name] = Math.min(results[name], await once(name, tracer));
}
const plain = results.plain;
const per = (name) => ((results[name] - plain) / (2 * N)) * 1e9;
const bt = per('bpftrace count');
for (const [name] of cases) {
  const line = `${name.padEnd(24)} ${(results[name] * 1000).toFixed(1).padStart(8)} ms`;
  if (name === 'plain') console.log(`${line}   (${((plain / (2 * N)) * 1e9).toFixed(1)} ns per call)`);
  else {
    console.log(`${line}   +${per(name).toFixed(0).padStart(5)} ns per probed call (${(per(name) / bt).toFixed(2)}x bpftrace)` +
      `   BPF programs: ${bpfNs[name].toFixed(0).padStart(4)} ns per run (${(bpfNs[name] / bpfNs['bpftrace count']).toFixed(2)}x bpftrace)`);
  }
}
