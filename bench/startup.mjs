#!/usr/bin/env node
// bench/startup: wall time and peak RSS from launch until the probes are
// attached and the process has exited again, against bare node and against
// bpftrace doing the same job (an exec tracepoint, exit at once).
// Median of N runs each, in one run of this script, printed as ratios.
//
// Then, per tool: what refusals cost. Each tool starts three ways: choosing
// its path with this boot's refusals not yet known (RBTRACE_REFUSAL_MEMORY=0:
// every refused path is loaded and refused again), choosing it with them
// remembered (the usual case after a tool's first start this boot), and
// forced straight onto the path it chose (what a kernel that refuses
// nothing costs). Target: remembered / forced <= 1.1.
//
//   node bench/startup.mjs [runs]     (as root, after npm run build)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const runs = Number(process.argv[2] ?? 9);
const rbtrace = fileURLToPath(new URL('../bin/rbtrace', import.meta.url));

const cases = {
  'node -e 0': [process.execPath, '-e', '0'],
  'rbtrace execsnoop -d 0': [process.execPath, rbtrace, 'execsnoop', '-d', '0'],
  'rbtrace execsnoop -x -d 0': [process.execPath, rbtrace, 'execsnoop', '-x', '-d', '0'],
  'bpftrace (exec tracepoint)': ['bpftrace', '-e', 'tracepoint:syscalls:sys_enter_execve { } BEGIN { exit(); }'],
};

function measure(argv) {
  // GNU time: %e wall seconds, %M peak RSS in KiB.
  const r = spawnSync('/usr/bin/time', ['-f', 'RBT %e %M', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const m = r.stderr.match(/RBT ([\d.]+) (\d+)/);
  if (!m) throw new Error(`no timing for ${argv.join(' ')}: ${r.stderr}`);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  return { wall: Number(m[1]), rssMiB: Number(m[2]) / 1024 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = {};
// Interleave the cases so that machine noise hits them alike.
const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < runs; i++) for (const [name, argv] of Object.entries(cases)) samples[name].push(measure(argv));
for (const [name, s] of Object.entries(samples)) results[name] = { wall: median(s.map((x) => x.wall)), rss: median(s.map((x) => x.rssMiB)) };

const node = results['node -e 0'];
const bpftrace = results['bpftrace (exec tracepoint)'];
console.log(`startup, median of ${runs} runs each\n`);
console.log('case                          wall s   peak RSS MiB   wall/node  wall/bpftrace');
for (const [name, r] of Object.entries(results)) {
  console.log(`${name.padEnd(28)} ${r.wall.toFixed(3).padStart(7)}   ${r.rss.toFixed(1).padStart(12)}   ${(r.wall / node.wall).toFixed(2).padStart(9)}  ${(r.wall / bpftrace.wall).toFixed(2).padStart(13)}`);
}
const rb = results['rbtrace execsnoop -d 0'];
console.log(`\ntargets: wall <= 0.6 x bpftrace (${(rb.wall / bpftrace.wall).toFixed(2)}), <= 2 x node (${(rb.wall / node.wall).toFixed(2)}), peak RSS <= 60 MiB (${rb.rss.toFixed(1)})`);

// ---- refusals: per tool, first start vs remembered vs the chosen path forced ----
const TOOL_CASES = {
  'execsnoop': ['execsnoop'],
  'execsnoop -x': ['execsnoop', '-x'],
  'syscount': ['syscount'],
  'syscount -L': ['syscount', '-L'],
  'synqueue': ['synqueue', '--json'],
  'strlat': ['strlat'],
  'gcstat': ['gcstat'],
  'mallocstat': ['mallocstat'],
  'profile': ['profile'],
};
const chosenPath = (args) => {
  const r = spawnSync(process.execPath, [rbtrace, ...args, '-v', '-d', '0'], { encoding: 'utf8' });
  const m = /attach path: (\w+)/.exec(r.stderr);
  if (!m) throw new Error(`${args.join(' ')}: no attach path in -v: ${r.stderr}`);
  return m[1];
};
const withEnv = (env, argv) => ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
const refusalCases = {};
for (const [name, args] of Object.entries(TOOL_CASES)) {
  const path = chosenPath(args);
  const argv = [process.execPath, rbtrace, ...args, '-d', '0'];
  refusalCases[name] = {
    path,
    first: withEnv({ RBTRACE_REFUSAL_MEMORY: '0' }, argv),
    remembered: argv,
    forced: [...argv, '--attach', path],
  };
}
const tsamples = Object.fromEntries(Object.keys(refusalCases).map((k) => [k, { first: [], remembered: [], forced: [] }]));
for (let i = 0; i < runs; i++) {
  for (const [name, c] of Object.entries(refusalCases)) for (const how of ['first', 'remembered', 'forced']) tsamples[name][how].push(measure(c[how]).wall);
}
console.log(`\nrefusals, median wall s of ${runs} runs each (-d 0: attach, then exit)\n`);
console.log('tool            path        first start   remembered   path forced   remembered/forced');
for (const [name, c] of Object.entries(refusalCases)) {
  const [f, r, p] = ['first', 'remembered', 'forced'].map((how) => median(tsamples[name][how]));
  console.log(`${name.padEnd(15)} ${c.path.padEnd(11)} ${f.toFixed(3).padStart(11)}   ${r.toFixed(3).padStart(10)}   ${p.toFixed(3).padStart(11)}   ${(r / p).toFixed(2).padStart(17)}`);
}
