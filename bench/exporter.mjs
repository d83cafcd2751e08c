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
// than 2 MiB and the mean heap after GC by less than 1 MiB (after
// mark-compacts when both minutes had one: after a scavenge the heap still
// holds the old generation's garbage); else "GROWS". RSS at most 80 MiB in
// the last minute is reported apart.
//
// --listeners N adds N idle loopback listeners (one python3 process holds
// them) for the cost of synqueue's families at scale: RSS, peak RSS (VmHWM)
// and CPU per scrape. By default --max-series 2000 shows 2000 of them.
//
// --baseline OTHER/bin/rbtrace runs a second exporter, of another build (the
// previous commit), side by side under the same load and scrapes: before and
// after in the same run.
//
// --churn adds what exercises per-series state: 300 loopback listeners of
// which 100 a second are closed and replaced (new ports), a new ruby every
// second doing 3 GC.start and ending 2 s later (new pids), and 10 execs a
// second. --node-flags "..." runs the exporter under other V8 flags
// (RBTRACE_EXPORTER_NODE_FLAGS; "" for Node's defaults); --snapshots DIR
// writes V8 heap snapshots there after the first minute and at the end
// (node --heapsnapshot-signal=SIGUSR2), to compare in Chrome's DevTools.
//
//   node bench/exporter.mjs [--minutes 10] [--scrape 15] [--churn] [--listeners N] [--baseline OTHER/bin/rbtrace] [--node-flags "..."] [--snapshots DIR] [-- EXPORTER-ARGS]
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
const BASELINE = arg('baseline', undefined);
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

const extra = process.argv.includes('--') ? process.argv.slice(process.argv.indexOf('--') + 1) : [];
// On node's command line (NODE_OPTIONS refuses --trace-gc); the exporter keeps them when it restarts under its heap flags.
const nodeArgs = ['--trace-gc', ...(SNAPSHOTS ? ['--heapsnapshot-signal=SIGUSR2'] : [])];
const t0 = Date.now();

/** One exporter under test: this tree's, or the --baseline build's, side by side under the same load. */
async function startSubject(name, bin) {
  const port = await freePort();
  const env = { ...process.env };
  if (NODE_FLAGS !== undefined) env.RBTRACE_EXPORTER_NODE_FLAGS = NODE_FLAGS;
  const proc = spawn(process.execPath, [...nodeArgs, bin, 'exporter', '--listen', `127.0.0.1:${port}`, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: SNAPSHOTS ?? root });
  const sub = { name, bin, port, proc, log: '', gcs: [], heapUsed: [], scrapeTimes: [], scrapes: 0, bytes: 0, series: 0 };
  proc.stderr.on('data', (d) => (sub.log += d));
  // --trace-gc: "[pid:0x..]  1234 ms: Scavenge 5.1 (7.2) -> 4.3 (7.2) MB, ..." per collection: heap in use after it.
  let tail = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => {
    const lines = (tail + d).split('\n');
    tail = lines.pop();
    for (const l of lines) {
      const m = /ms: ([A-Za-z -]+?) ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/.exec(l);
      if (m) sub.gcs.push({ t: (Date.now() - t0) / 1000, kind: m[1], after: Number(m[4]), committed: Number(m[5]) });
    }
  });
  return sub;
}
const subjects = [await startSubject('exporter', `${root}bin/rbtrace`)];
if (BASELINE) subjects.push(await startSubject('baseline', BASELINE));
const cleanup = () => {
  for (const p of [...load, bare, ...subjects.map((x) => x.proc)]) if (p.exitCode === null) p.kill('SIGTERM');
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
for (const sub of subjects) {
  while (!/probes attached \(/.test(sub.log)) {
    if (sub.proc.exitCode !== null || Date.now() - t0 > 60000) throw new Error(`${sub.name} did not start: ${sub.log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const listeners = spawnSync('ss', ['-Hltn'], { encoding: 'utf8' }).stdout.trim().split('\n').length;
for (const sub of subjects) {
  console.log(`${sub.name} (${sub.bin}) pid ${sub.proc.pid} on 127.0.0.1:${sub.port} (${sub.log.match(/probes attached \(([^)]*)\)/)[1]})`);
}
console.log(`${listeners} TCP listeners on the host; ${MINUTES} min, scrape every ${SCRAPE_S} s, sample every ${SAMPLE_S} s ...`);

const scrape = async (sub) => {
  const r = await fetch(`http://127.0.0.1:${sub.port}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`scrape: ${r.status}`);
  sub.scrapes++;
  sub.scrapeTimes.push((Date.now() - t0) / 1000);
  sub.bytes = body.length;
  sub.series = body.split('\n').filter((l) => l && !l.startsWith('#')).length;
  const h = /^nodejs_heap_used_bytes (\S+)$/m.exec(body);
  if (h) sub.heapUsed.push({ t: (Date.now() - t0) / 1000, mib: Number(h[1]) / 1048576 });
};
const scrapeAll = () => Promise.all(subjects.map((sub) => scrape(sub).catch((e) => console.error(`${sub.name}: ${e.message}`))));
await scrapeAll();
const scraper = setInterval(scrapeAll, SCRAPE_S * 1000);

const samples = []; // { t, subjects: [{cpu, rss, hwm}], bare: {...}, load: cpu }
const loadCpu = () => load.reduce((a, p) => a + usage(p.pid).cpu, 0);
const take = () => samples.push({ t: (Date.now() - t0) / 1000, subjects: subjects.map((x) => usage(x.proc.pid)), bare: usage(bare.pid), load: loadCpu() });
take();
const end = Date.now() + MINUTES * 60_000;
let snapped = false;
while (Date.now() < end) {
  await new Promise((r) => setTimeout(r, SAMPLE_S * 1000));
  take();
  if (SNAPSHOTS && !snapped && samples.at(-1).t >= 60) {
    for (const sub of subjects) sub.proc.kill('SIGUSR2');
    snapped = true;
  }
}
clearInterval(scraper);
if (SNAPSHOTS) {
  for (const sub of subjects) sub.proc.kill('SIGUSR2');
  await new Promise((r) => setTimeout(r, 5000));
}

const mib = (x) => (x / 1048576).toFixed(1);
/** Subject i's CPU % of one core, CPU per scrape, RSS and heap between two sample indexes, with the bare node's and the load's. */
function window(i, from, to) {
  const a = samples[from], b = samples[to];
  const sub = subjects[i];
  const dt = b.t - a.t;
  const part = samples.slice(from, to + 1);
  const rss = (get) => ({ mean: mib(part.reduce((s, x) => s + get(x).rss, 0) / part.length), max: mib(Math.max(...part.map((x) => get(x).rss))) });
  const within = (xs) => xs.filter((x) => x.t >= a.t && x.t <= b.t);
  const mean = (xs, f) => (xs.length ? (xs.reduce((s, x) => s + f(x), 0) / xs.length).toFixed(1) : null);
  const gc = within(sub.gcs);
  const scraped = sub.scrapeTimes.filter((t) => t > a.t && t <= b.t).length;
  const cpu = b.subjects[i].cpu - a.subjects[i].cpu;
  return {
    seconds: Math.round(dt),
    cpu_pct: ((100 * cpu) / dt).toFixed(2),
    // All of its CPU in the window (background readings and polling too) over the scrapes in it.
    cpu_ms_per_scrape: scraped ? ((1000 * cpu) / scraped).toFixed(1) : null,
    rss_mib: rss((x) => x.subjects[i]),
    rss_peak_mib: mib(b.subjects[i].hwm),
    heap_after_gc_mib: { mean: mean(gc, (x) => x.after), max: gc.length ? Math.max(...gc.map((x) => x.after)).toFixed(1) : null, collections: gc.length },
    // After a scavenge the heap still holds the old generation's dead objects (until the next
    // mark-compact): only a full collection's "after" is the live heap.
    live_heap_after_mark_compact_mib: (() => {
      const full = gc.filter((x) => /Mark-Compact|Mark-sweep/i.test(x.kind) && !/Minor/i.test(x.kind));
      return { mean: mean(full, (x) => x.after), collections: full.length };
    })(),
    heap_committed_mib_max: gc.length ? Math.max(...gc.map((x) => x.committed)).toFixed(1) : null,
    heap_used_at_scrapes_mib: mean(within(sub.heapUsed), (x) => x.mib),
    bare_node_cpu_pct: ((100 * (b.bare.cpu - a.bare.cpu)) / dt).toFixed(2),
    bare_node_rss_mib: rss((x) => x.bare),
    load_cpu_pct: ((100 * (b.load - a.load)) / dt).toFixed(1),
  };
}
const perMin = Math.round(60 / SAMPLE_S);
const last = samples.length - 1;
const midStart = Math.max(0, Math.floor(last / 2) - Math.floor(perMin / 2));
const report = {
  minutes: MINUTES, scrape_s: SCRAPE_S, churn: CHURN, extra_listeners: LISTENERS, node_flags: NODE_FLAGS ?? '(the exporter\'s defaults)', host_listeners: listeners,
};
const verdicts = [];
subjects.forEach((sub, i) => {
  const r = {
    bin: sub.bin, scrapes: sub.scrapes, last_scrape_bytes: sub.bytes, last_scrape_series: sub.series,
    first_minute: window(i, 0, Math.min(perMin, last)),
    middle_minute: window(i, midStart, Math.min(midStart + perMin, last)),
    last_minute: window(i, Math.max(0, last - perMin), last),
    whole_run: window(i, 0, last),
  };
  // The curve, not just three points: every 5 minutes, the exporter's RSS and heap with the bare node's RSS beside.
  r.every_5_minutes = [];
  for (let m = 0; m * perMin < last; m += 5) {
    const w = window(i, m * perMin, Math.min((m + 1) * perMin, last));
    r.every_5_minutes.push({ minute: m, rss_mib: w.rss_mib.mean, heap_after_gc_mib: w.heap_after_gc_mib.mean, bare_node_rss_mib: w.bare_node_rss_mib.mean });
  }
  const rssRise = Number(r.last_minute.rss_mib.mean) - Number(r.middle_minute.rss_mib.mean);
  // The live heap where both minutes had a mark-compact, else the heap after any collection (an upper bound).
  const full = (w) => w.live_heap_after_mark_compact_mib;
  const live = full(r.last_minute).collections > 0 && full(r.middle_minute).collections > 0;
  const heapRise = live ? Number(full(r.last_minute).mean) - Number(full(r.middle_minute).mean)
    : Number(r.last_minute.heap_after_gc_mib.mean) - Number(r.middle_minute.heap_after_gc_mib.mean);
  const underCap = Number(r.last_minute.rss_mib.max) <= 80;
  r.verdict = {
    rss_rise_mib_first_to_last: (Number(r.last_minute.rss_mib.mean) - Number(r.first_minute.rss_mib.mean)).toFixed(1),
    heap_used_rise_mib_first_to_last: (Number(r.last_minute.heap_used_at_scrapes_mib) - Number(r.first_minute.heap_used_at_scrapes_mib)).toFixed(1),
    rss_rise_mib_middle_to_last: rssRise.toFixed(1),
    heap_after_gc_rise_mib_middle_to_last: heapRise.toFixed(1),
    heap_rise_measured_on: live ? 'mark-compacts (the live heap)' : 'every collection (no mark-compact in both minutes: dead old objects included)',
    memory: rssRise < 2 && heapRise < 1 ? 'flat' : 'GROWS',
    rss_at_most_80_mib: underCap,
  };
  report[sub.name] = r;
  verdicts.push(`${sub.name}: every 5 minutes, RSS / heap after GC / bare node RSS (MiB): ` +
    r.every_5_minutes.map((x) => `${x.minute}: ${x.rss_mib}/${x.heap_after_gc_mib ?? '-'}/${x.bare_node_rss_mib}`).join(', '));
  verdicts.push(`${sub.name}: memory ${r.verdict.memory} (RSS ${r.first_minute.rss_mib.mean} -> ${r.middle_minute.rss_mib.mean} -> ${r.last_minute.rss_mib.mean} MiB, ` +
    `heap after GC ${r.first_minute.heap_after_gc_mib.mean} -> ${r.middle_minute.heap_after_gc_mib.mean} -> ${r.last_minute.heap_after_gc_mib.mean} MiB, ` +
    `heapUsed at scrapes ${r.first_minute.heap_used_at_scrapes_mib} -> ${r.last_minute.heap_used_at_scrapes_mib} MiB: first -> middle -> last minute); ` +
    `last-minute RSS max ${r.last_minute.rss_mib.max} MiB ${underCap ? '<=' : '>'} 80 MiB; CPU ${r.whole_run.cpu_pct} % of a core, ${r.whole_run.cpu_ms_per_scrape} ms per scrape`);
});
verdicts.push(`bare node: RSS ${report.exporter.last_minute.bare_node_rss_mib.mean} MiB, CPU ${report.exporter.whole_run.bare_node_cpu_pct} %; load ${report.exporter.whole_run.load_cpu_pct} % of a core`);
console.log(JSON.stringify(report, null, 2));
for (const v of verdicts) console.log(`verdict: ${v}`);
for (const sub of subjects) sub.proc.kill('SIGTERM');
for (const sub of subjects) {
  if (sub.proc.exitCode === null) await new Promise((r) => sub.proc.on('exit', r));
  console.log(`${sub.name} exit: ${sub.proc.exitCode}`);
}
process.exit(0);
