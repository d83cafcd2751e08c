#!/usr/bin/env node
// bench/exporter: steady-state CPU (% of one core) and memory of `rbtrace
// exporter` with every default tool on, scraped every 15 s, under a steady
// syscall / connection / exec / ruby-GC load, for 10 minutes (or --minutes).
// Reports the first, middle and last minute and the whole run, and a growth
// verdict: memory must be flat. Baseline in the same run: a bare `node`
// process idling with a timer, sampled the same way (what any Node daemon
// costs), and the load itself.
//
// CPU is the exporter's utime+stime from /proc/PID/stat: its user-space work
// (reading maps, rendering, serving) and its syscalls. The probes' in-kernel
// cost is charged to the traced tasks, not to it (bench/syscount.mjs and
// bench/synqueue.mjs measure that cost). RSS is sampled from /proc/PID/status
// every 5 s; the V8 heap after each garbage collection comes from the
// exporter's own --trace-gc lines (heap in use once the garbage is gone:
// what a leak raises), and heapUsed from nodejs_heap_used_bytes per scrape.
//
// Growth verdict: the last minute against the middle one (the first holds
// start-up: BTF parsing, JIT warm-up): "flat" when the mean RSS rose by less
// than 2 MiB and the mean heap after GC by less than 1 MiB, the last
// minute's RSS stayed under 80 MiB; else "GROWS".
//
// --listeners N adds N idle loopback listeners (one python3 process holds
// them) for the cost of synqueue's families at scale: RSS, peak RSS (VmHWM)
// and CPU per scrape. By default --max-series 2000 shows 2000 of them.
//
// --churn adds what exercises per-series state: 300 loopback listeners of
// which 100 a second are closed and replaced (new ports), a new ruby every
// second doing 3 GC.start and ending 2 s later (new pids), and 10 execs a
// second. --node-flags "..." runs the exporter under other V8 flags
// (RBTRACE_EXPORTER_NODE_FLAGS; "" for Node's defaults); --snapshots DIR
// writes V8 heap snapshots there after the first minute and at the end
// (node --heapsnapshot-signal=SIGUSR2), to compare in Chrome's DevTools.
//
//   node bench/exporter.mjs [--minutes 10] [--scrape 15] [--churn] [--listeners N] [--node-flags "..."] [--snapshots DIR] [-- EXPORTER-ARGS]
//   (as root, after npm run build; it loads BPF programs, so on a shared
//    machine under the test lock: flock /tmp/rbtrace-tests.lock node bench/exporter.mjs)
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const MINUTES = Number(arg('minutes', 10));
const SCRAPE_S = Number(arg('scrape', 15));
const CHURN = process.argv.includes('--churn');
const NODE_FLAGS = arg('node-flags', undefined);
const SNAPSHOTS = arg('snapshots', undefined);
const LISTENERS = Number(arg('listeners', 0));
const SAMPLE_S = 5;
const root = fileURLToPath(new URL('..', import.meta.url));
const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system), RSS and peak RSS bytes of a pid, now. */
function usage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / TICK; // utime, stime (fields 14, 15)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)[1]) * 1024;
  return { cpu, rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

// ---- the steady load -----------------------------------------------------------
// One node process: a loopback HTTP server and a client opening a new
// connection for each of 50 requests a second, plus 2000 stat() calls a
// second; a shell running /bin/true once a second (execs); a ruby allocating
// and calling GC.start twice a second (USDT GC probes, RSS).
const LOAD_JS = `
const http = require('http'), fs = require('fs');
const srv = http.createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1', () => {
  const port = srv.address().port;
  setInterval(() => {
    for (let i = 0; i < 5; i++) http.get({ host: '127.0.0.1', port, agent: false }, (r) => r.resume()).on('error', () => {});
    for (let i = 0; i < 200; i++) fs.statSync('/');
  }, 100);
});`;
// --churn: listeners, rubies and execs that come and go (see the top).
const CHURN_JS = `
const net = require('net');
const open = [];
const one = () => { const s = net.createServer().listen(0, '127.0.0.1'); s.on('error', () => {}); open.push(s); };
for (let i = 0; i < 300; i++) one();
setInterval(() => { for (let i = 0; i < 25; i++) { open.shift().close(); one(); } }, 250);`;
const load = [
  spawn(process.execPath, ['-e', LOAD_JS], { stdio: 'ignore' }),
  spawn('sh', ['-c', `while :; do /bin/true; sleep ${CHURN ? 0.1 : 1}; done`], { stdio: 'ignore' }),
  spawn('ruby', ['-e', 'loop { a = Array.new(20000) { |i| "s#{i}" }; GC.start; sleep 0.5 }'], { stdio: 'ignore' }),
  ...(CHURN ? [
    spawn(process.execPath, ['-e', CHURN_JS], { stdio: 'ignore' }),
    spawn('sh', ['-c', `while :; do ruby --disable-gems -e '3.times { GC.start }; sleep 2' & sleep 1; done`], { stdio: 'ignore' }),
  ] : []),
];
const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
if (LISTENERS > 0) {
  const hold = spawn('python3', ['-c', `
import resource, socket, sys
n = ${LISTENERS}
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))
held = []
for _ in range(n):
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen(128)
    held.append(s)
print('ready', flush=True)
sys.stdin.read()`], { stdio: ['pipe', 'pipe', 'inherit'] });
  load.push(hold);
  await new Promise((resolve, reject) => {
    hold.stdout.once('data', resolve);
    hold.once('exit', () => reject(new Error('the listener holder failed')));
  });
}

const port = await freePort();
const env = { ...process.env };
if (NODE_FLAGS !== undefined) env.RBTRACE_EXPORTER_NODE_FLAGS = NODE_FLAGS;
// On node's command line (NODE_OPTIONS refuses --trace-gc); the exporter keeps them when it restarts under its heap flags.
const nodeArgs = ['--trace-gc', ...(SNAPSHOTS ? ['--heapsnapshot-signal=SIGUSR2'] : [])];
const extra = process.argv.includes('--') ? process.argv.slice(process.argv.indexOf('--') + 1) : [];
const exporter = spawn(process.execPath, [...nodeArgs, `${root}bin/rbtrace`, 'exporter', '--listen', `127.0.0.1:${port}`, ...extra],
  { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: SNAPSHOTS ?? root });
let log = '';
exporter.stderr.on('data', (d) => (log += d));
// --trace-gc: "[pid:0x..]  1234 ms: Scavenge 5.1 (7.2) -> 4.3 (7.2) MB, ..." per collection: heap in use after it.
const gcs = []; // { t, kind, after, committed } (MiB)
let gcTail = '';
exporter.stdout.setEncoding('utf8').on('data', (d) => {
  const lines = (gcTail + d).split('\n');
  gcTail = lines.pop();
  for (const l of lines) {
    const m = /ms: ([A-Za-z -]+?) ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/.exec(l);
    if (m) gcs.push({ t: (Date.now() - t0) / 1000, kind: m[1], after: Number(m[4]), committed: Number(m[5]) });
  }
});
const cleanup = () => {
  for (const p of [...load, bare, exporter]) if (p.exitCode === null) p.kill('SIGTERM');
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
const t0 = Date.now();
while (!/probes attached \(/.test(log)) {
  if (exporter.exitCode !== null || Date.now() - t0 > 60000) throw new Error(`exporter did not start: ${log}`);
  await new Promise((r) => setTimeout(r, 50));
}
const listeners = spawnSync('ss', ['-Hltn'], { encoding: 'utf8' }).stdout.trim().split('\n').length;
console.log(`exporter pid ${exporter.pid} on 127.0.0.1:${port} (${log.match(/probes attached \(([^)]*)\)/)[1]}); ${listeners} TCP listeners on the host`);
console.log(`${MINUTES} min, scrape every ${SCRAPE_S} s, sample every ${SAMPLE_S} s ...`);

let scrapes = 0;
let bytes = 0;
let series = 0;
const heapUsed = []; // { t, mib }: nodejs_heap_used_bytes of each scrape
const scrapeTimes = [];
const scrape = async () => {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`scrape: ${r.status}`);
  scrapes++;
  scrapeTimes.push((Date.now() - t0) / 1000);
  bytes = body.length;
  series = body.split('\n').filter((l) => l && !l.startsWith('#')).length;
  const h = /^nodejs_heap_used_bytes (\S+)$/m.exec(body);
  if (h) heapUsed.push({ t: (Date.now() - t0) / 1000, mib: Number(h[1]) / 1048576 });
};
await scrape();
const scraper = setInterval(() => scrape().catch((e) => console.error(e.message)), SCRAPE_S * 1000);

const samples = []; // { t, exp: {cpu, rss}, bare: {cpu, rss}, load: cpu }
const loadCpu = () => load.reduce((a, p) => a + usage(p.pid).cpu, 0);
const take = () => samples.push({ t: (Date.now() - t0) / 1000, exp: usage(exporter.pid), bare: usage(bare.pid), load: loadCpu() });
take();
const end = Date.now() + MINUTES * 60_000;
let snapped = false;
while (Date.now() < end) {
  await new Promise((r) => setTimeout(r, SAMPLE_S * 1000));
  take();
  if (SNAPSHOTS && !snapped && samples.at(-1).t >= 60) {
    exporter.kill('SIGUSR2');
    snapped = true;
  }
}
clearInterval(scraper);
if (SNAPSHOTS) {
  exporter.kill('SIGUSR2');
  await new Promise((r) => setTimeout(r, 5000));
}

/** CPU % of one core and RSS (mean, max) between two sample indexes. */
function window(from, to) {
  const a = samples[from], b = samples[to];
  const dt = b.t - a.t;
  const part = samples.slice(from, to + 1);
  const mib = (x) => (x / 1048576).toFixed(1);
  const rss = (k) => ({ mean: mib(part.reduce((s, x) => s + x[k].rss, 0) / part.length), max: mib(Math.max(...part.map((x) => x[k].rss))) });
  const within = (xs) => xs.filter((x) => x.t >= a.t && x.t <= b.t);
  const mean = (xs, f) => (xs.length ? (xs.reduce((s, x) => s + f(x), 0) / xs.length).toFixed(1) : null);
  const gc = within(gcs);
  const scraped = scrapeTimes.filter((t) => t > a.t && t <= b.t).length;
  return {
    seconds: Math.round(dt),
    exporter_cpu_pct: ((100 * (b.exp.cpu - a.exp.cpu)) / dt).toFixed(2),
    // All of its CPU in the window (background readings and polling too) over the scrapes in it.
    exporter_cpu_ms_per_scrape: scraped ? ((1000 * (b.exp.cpu - a.exp.cpu)) / scraped).toFixed(1) : null,
    exporter_rss_peak_mib: mib(b.exp.hwm),
    exporter_rss_mib: rss('exp'),
    exporter_heap_after_gc_mib: { mean: mean(gc, (x) => x.after), max: gc.length ? Math.max(...gc.map((x) => x.after)).toFixed(1) : null, collections: gc.length },
    exporter_heap_committed_mib_max: gc.length ? Math.max(...gc.map((x) => x.committed)).toFixed(1) : null,
    exporter_heap_used_at_scrapes_mib: mean(within(heapUsed), (x) => x.mib),
    bare_node_cpu_pct: ((100 * (b.bare.cpu - a.bare.cpu)) / dt).toFixed(2),
    bare_node_rss_mib: rss('bare'),
    load_cpu_pct: ((100 * (b.load - a.load)) / dt).toFixed(1),
  };
}
const perMin = Math.round(60 / SAMPLE_S);
const last = samples.length - 1;
const midStart = Math.max(0, Math.floor(last / 2) - Math.floor(perMin / 2));
const report = {
  minutes: MINUTES, scrape_s: SCRAPE_S, churn: CHURN, node_flags: NODE_FLAGS ?? '(the exporter\'s defaults)',
  scrapes, last_scrape_bytes: bytes, last_scrape_series: series, host_listeners: listeners,
  first_minute: window(0, Math.min(perMin, last)),
  middle_minute: window(midStart, Math.min(midStart + perMin, last)),
  last_minute: window(Math.max(0, last - perMin), last),
  whole_run: window(0, last),
};
const rssRise = Number(report.last_minute.exporter_rss_mib.mean) - Number(report.middle_minute.exporter_rss_mib.mean);
const heapRise = Number(report.last_minute.exporter_heap_after_gc_mib.mean) - Number(report.middle_minute.exporter_heap_after_gc_mib.mean);
const underCap = Number(report.last_minute.exporter_rss_mib.max) <= 80;
report.verdict = {
  rss_rise_mib_middle_to_last: rssRise.toFixed(1),
  heap_after_gc_rise_mib_middle_to_last: heapRise.toFixed(1),
  rss_rise_mib_first_to_last: (Number(report.last_minute.exporter_rss_mib.mean) - Number(report.first_minute.exporter_rss_mib.mean)).toFixed(1),
  memory: rssRise < 2 && heapRise < 1 ? 'flat' : 'GROWS',
  rss_at_most_80_mib: underCap,
};
console.log(JSON.stringify(report, null, 2));
console.log(`verdict: memory ${report.verdict.memory} (RSS ${rssRise >= 0 ? '+' : ''}${rssRise.toFixed(1)} MiB, heap after GC ${heapRise >= 0 ? '+' : ''}${heapRise.toFixed(1)} MiB from the middle to the last minute); ` +
  `last-minute RSS max ${report.last_minute.exporter_rss_mib.max} MiB ${underCap ? '<=' : '>'} 80 MiB; bare node ${report.last_minute.bare_node_rss_mib.mean} MiB`);
exporter.kill('SIGTERM');
await new Promise((r) => exporter.on('exit', r));
console.log(`exporter exit: ${exporter.exitCode}`);
process.exit(0);
