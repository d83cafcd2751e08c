#!/usr/bin/env node
// bench/syscount: what counting syscalls costs a syscall-heavy workload.
//
// The workload is `dd if=/dev/zero of=/dev/null bs=1 count=N` (two syscalls
// per byte); its time is dd's CPU time (perf stat's task-clock), which
// counts the work done in dd's syscalls, probes included, and neither tracer
// start-up nor time spent waiting for a CPU on a shared machine. strace is
// timed by dd's own wall-clock copy time instead (ptrace's cost is mostly
// waiting for the tracer). Each case is the best of R runs. Cases:
//   plain; the floor (empty tp_btf programs on raw_syscalls sys_exit, and on
//   sys_enter+sys_exit: the cost of the tracepoints themselves); rbtrace
//   syscount (system-wide, and -- CMD); rbtrace syscount -L; bpftrace's count
//   and latency-histogram one-liners; strace -c -f (with N/25: ptrace is slow).
//
//   node bench/syscount.mjs [N] [R]      (as root, after npm run build)
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';

const N = Number(process.argv[2] ?? 500000);
const R = Number(process.argv[3] ?? 5);
const root = fileURLToPath(new URL('..', import.meta.url));
const rbtrace = `${root}bin/rbtrace`;
const floorObj = `${root}build/tmp/syscount-floor.bpf.o`;

mkdirSync(`${root}build/tmp`, { recursive: true });
execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-I${root}build`, '-c', `${root}bench/syscount-floor.bpf.c`, '-o', floorObj]);

const PERF = ['perf', 'stat', '-x,', '-e', 'task-clock'];

/** Seconds: dd's task-clock (cpu), or its own copy time (wall). */
function ddOnce(count, wrap = [], clock = 'cpu') {
  const argv = [...wrap, ...(clock === 'cpu' ? PERF : []), 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1', `count=${count}`];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const m = clock === 'cpu' ? r.stderr.match(/^([\d.]+),msec,task-clock/m) : r.stderr.match(/copied, ([\d.e+-]+) s/);
  if (!m) throw new Error(`no dd time from ${argv.join(' ')}: ${r.stderr}`);
  return clock === 'cpu' ? Number(m[1]) / 1000 : Number(m[1]);
}

function best(count, wrap = [], clock = 'cpu') {
  let t = Infinity;
  for (let i = 0; i < R; i++) t = Math.min(t, ddOnce(count, wrap, clock));
  return t;
}

/** Run fn while a tracer runs; `ready` tells from its output that it is attached. */
async function under(argv, ready, fn) {
  if (process.env.BENCH_DEBUG) console.error(`under: ${argv.join(" ")}`);
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d) => (text += d));
  child.stderr.on('data', (d) => (text += d));
  const start = Date.now();
  while (!ready.test(text)) {
    if (child.exitCode !== null) throw new Error(`${argv.join(' ')} exited: ${text}`);
    if (Date.now() - start > 30000) throw new Error(`${argv.join(' ')} never got ready: ${text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 200));
  const t = fn();
  child.kill('SIGINT');
  await new Promise((r) => child.on('close', r));
  return t;
}

const bpftraceReady = /Attaching \d+ probe/;
const rbReady = /probes attached/;
const results = [];
const add = (name, t, base = null) => results.push({ name, t, base });

const plain = best(N);
add('plain', plain);
add('floor: empty tp_btf on sys_exit', await under([process.execPath, `${root}bench/syscount-floor.mjs`, floorObj, 'exit'], /ready/, () => best(N)));
add('floor: empty tp_btf on sys_enter+exit', await under([process.execPath, `${root}bench/syscount-floor.mjs`, floorObj, 'both'], /ready/, () => best(N)));
add('rbtrace syscount', await under([process.execPath, rbtrace, 'syscount', '-v'], rbReady, () => best(N)));
add('rbtrace syscount -L', await under([process.execPath, rbtrace, 'syscount', '-v', '-L'], rbReady, () => best(N)));
add('rbtrace syscount --hist', await under([process.execPath, rbtrace, 'syscount', '-v', '--hist'], rbReady, () => best(N)));
// -- CMD: the start-up is outside dd's own copy time, so this is comparable.
add('rbtrace syscount -- dd (strace table)', best(N, [process.execPath, rbtrace, 'syscount', '--']));
add('bpftrace count one-liner', await under(['bpftrace', '-e', 'tracepoint:raw_syscalls:sys_exit { @[args->id] = count(); }'], bpftraceReady, () => best(N)));
add('bpftrace latency hist one-liner', await under(['bpftrace', '-e',
  'tracepoint:raw_syscalls:sys_enter { @s[tid] = nsecs; } tracepoint:raw_syscalls:sys_exit /@s[tid]/ { @[args->id] = hist(nsecs - @s[tid]); delete(@s[tid]); }'],
bpftraceReady, () => best(N)));
const small = Math.max(1000, Math.round(N / 25));
const plainSmall = best(small, [], 'wall');
add(`strace -c -f (count=${small}, wall vs wall)`, best(small, ['strace', '-c', '-f', '-o', '/dev/null'], 'wall'), plainSmall);

console.log(`dd if=/dev/zero of=/dev/null bs=1 count=${N}: ${2 * N} syscalls; best of ${R} runs; time is dd's CPU time (task-clock)\n`);
console.log('case                                        time s   slowdown');
for (const r of results) {
  const base = r.base ?? plain;
  console.log(`${r.name.padEnd(42)} ${r.t.toFixed(3).padStart(8)}   ${(r.t / base).toFixed(2).padStart(7)}x`);
}
const get = (n) => results.find((r) => r.name === n).t;
const extra = (n) => get(n) - plain;
const fe = extra('floor: empty tp_btf on sys_exit');
const fb = extra('floor: empty tp_btf on sys_enter+exit');
console.log('\nper syscall, extra over plain (ns):');
for (const r of results.slice(1, -1)) console.log(`  ${r.name.padEnd(42)} ${((r.t - plain) / (2 * N) * 1e9).toFixed(0).padStart(6)}`);
console.log('\ntargets:');
console.log(`  count extra / floor(exit) extra      = ${(extra('rbtrace syscount') / fe).toFixed(2)}  (target <= 1.3)`);
console.log(`  count extra / floor(enter+exit) extra= ${(extra('rbtrace syscount') / fb).toFixed(2)}`);
console.log(`  -L extra / floor(enter+exit) extra   = ${(extra('rbtrace syscount -L') / fb).toFixed(2)}  (target <= 3)`);
console.log(`  -L extra / floor(exit) extra         = ${(extra('rbtrace syscount -L') / fe).toFixed(2)}`);
console.log(`  count vs bpftrace count               = ${(get('rbtrace syscount') / get('bpftrace count one-liner')).toFixed(2)}x the time`);
console.log(`  -L vs bpftrace latency                = ${(get('rbtrace syscount -L') / get('bpftrace latency hist one-liner')).toFixed(2)}x the time`);
