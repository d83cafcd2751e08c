#!/usr/bin/env node
// bench/rubyobjnew: how much slower an allocation-heavy Ruby program runs
// under rbtrace rubyobjnew, with --sample 100 and without sampling, against
// the same program untraced, in the same run.
//
// The workload (Ruby, Debian's ruby): once told to go (a line on stdin, so
// the tracer attaches first), N iterations that each allocate a string
// literal, an array, a hash and an object (4 probed allocations), then it
// prints its wall time and CPU time (CLOCK_PROCESS_CPUTIME_ID). Wall time is
// compared: the traps' time is not all charged to the process's CPU clock. Cases, each the best of R rounds, rounds going
// through every case in turn:
//   plain                                  (untraced: the probes' semaphores are 0, Ruby skips them)
//   rbtrace rubyobjnew -p PID --sample 100 (every allocation traps; 1 in 100 is counted)
//   rbtrace rubyobjnew -p PID              (every allocation counted)
//   rbtrace rubyobjnew -p PID --site       (and its path:line)
//   bpftrace -p PID 'usdt:LIBRUBY:ruby:*__create { @ = count(); }'   (the floor: the trap and nothing else)
// The ratio that matters is against bpftrace: each probe hit traps into the
// kernel (several µs on this machine), sampled or not; sampling saves only
// what the BPF program does after the trap.
//
//   node bench/rubyobjnew.mjs [N] [R]      (as root, after npm run build)
//   defaults: N = 300000, R = 3
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] ?? 300000);
const R = Number(process.argv[3] ?? 3);
const root = fileURLToPath(new URL('..', import.meta.url));
const rbtrace = `${root}bin/rbtrace`;

const WORK = `
class Foo; def initialize(i) = @i = i; end
$stdin.gets
GC.start
w0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
c0 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
${N}.times { |i| s = "abc"; a = [i, s]; h = { k: a }; Foo.new(h) }
c1 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
w1 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
puts "#{w1 - w0} #{c1 - c0}"
`;

const libruby = execFileSync('sh', ['-c', "ldd $(command -v ruby) | awk '/libruby/ {print $3}'"], { encoding: 'utf8' }).trim();
const BPFTRACE = 'bpftrace';

async function once(tracerArgs) {
  const prog = spawn('ruby', ['--disable-gems', '-e', WORK], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  prog.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const progDone = new Promise((resolve) => prog.on('close', resolve));
  let tr;
  let trDone;
  if (tracerArgs) {
    const argv = tracerArgs[0] === BPFTRACE
      ? [BPFTRACE, '-p', String(prog.pid), '-e', `usdt:${libruby}:ruby:*__create { @ = count(); } BEGIN { printf("probes attached, tracing\\n"); }`]
      : [process.execPath, rbtrace, 'rubyobjnew', '-v', '-p', String(prog.pid), ...tracerArgs];
    tr = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    tr.stdout.setEncoding('utf8').on('data', (d) => (text += d));
    tr.stderr.setEncoding('utf8').on('data', (d) => (text += d));
    trDone = new Promise((resolve) => tr.on('close', resolve));
    const start = Date.now();
    while (!/probes attached, tracing/.test(text)) {
      if (tr.exitCode !== null || Date.now() - start > 30000) {
        prog.kill();
        throw new Error(`rbtrace did not attach:\n${text}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } else {
    await new Promise((r) => setTimeout(r, 300)); // ruby's start-up, as when a tracer attaches
  }
  prog.stdin.end('go\n');
  await progDone;
  if (tr) {
    tr.kill('SIGINT');
    await trDone;
  }
  const [wall, cpu] = out.trim().split(' ').map(Number);
  return { wall, cpu };
}

const CASES = {
  plain: null,
  'sample 100': ['--sample', '100'],
  'every allocation': [],
  'every allocation, --site': ['--site'],
  'bpftrace count': [BPFTRACE],
};
const best = {};
for (let r = 0; r < R; r++) {
  for (const [name, args] of Object.entries(CASES)) {
    const t = await once(args);
    const b = best[name];
    if (!b || t.wall < b.wall) best[name] = t;
  }
}
const allocs = N * 4;
console.log(`${N} iterations, ${allocs} probed allocations, best of ${R}`);
for (const [name, t] of Object.entries(best)) {
  const extra = ((t.wall - best.plain.wall) / allocs) * 1e9;
  console.log(`${name.padEnd(26)} wall ${t.wall.toFixed(3)} s  cpu ${t.cpu.toFixed(3)} s  x${(t.wall / best.plain.wall).toFixed(2)} of plain` +
    (name === 'plain' ? '' : `  x${(t.wall / best['bpftrace count'].wall).toFixed(2)} of bpftrace  (+${extra.toFixed(0)} ns per allocation)`));
}
