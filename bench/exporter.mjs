#!/usr/bin/env node
// bench/exporter: steady-state CPU (% of one core) and RSS of `rbtrace
// exporter` with every default tool on, scraped every 15 s, under a steady
// syscall / connection / exec / ruby-GC load, for 10 minutes (or --minutes).
// Reports the first and the last minute (memory must be flat) and the whole
// run. Baseline in the same run: a bare `node` process idling with a timer,
// sampled the same way (what any Node daemon costs), and the load itself.
//
// CPU is the exporter's utime+stime from /proc/PID/stat: its user-space work
// (reading maps, rendering, serving) and its syscalls. The probes' in-kernel
// cost is charged to the traced tasks, not to it (bench/syscount.mjs and
// bench/synqueue.mjs measure that cost).
//
//   node bench/exporter.mjs [--minutes 10] [--scrape 15]     (as root, after npm run build)
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MINUTES = arg('minutes', 10);
const SCRAPE_S = arg('scrape', 15);
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

/** CPU seconds (user + system) and RSS bytes of a pid, now. */
function usage(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / TICK; // utime, stime (fields 14, 15)
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  return { cpu, rss };
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
const load = [
  spawn(process.execPath, ['-e', LOAD_JS], { stdio: 'ignore' }),
  spawn('sh', ['-c', 'while :; do /bin/true; sleep 1; done'], { stdio: 'ignore' }),
  spawn('ruby', ['-e', 'loop { a = Array.new(20000) { |i| "s#{i}" }; GC.start; sleep 0.5 }'], { stdio: 'ignore' }),
];
const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });

const port = await freePort();
const exporter = spawn(process.execPath, [`${root}bin/rbtrace`, 'exporter', '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
exporter.stderr.on('data', (d) => (log += d));
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
const scrape = async () => {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`scrape: ${r.status}`);
  scrapes++;
  bytes = body.length;
  series = body.split('\n').filter((l) => l && !l.startsWith('#')).length;
};
await scrape();
const scraper = setInterval(() => scrape().catch((e) => console.error(e.message)), SCRAPE_S * 1000);

const samples = []; // { t, exp: {cpu, rss}, bare: {cpu, rss}, load: cpu }
const loadCpu = () => load.reduce((a, p) => a + usage(p.pid).cpu, 0);
const take = () => samples.push({ t: (Date.now() - t0) / 1000, exp: usage(exporter.pid), bare: usage(bare.pid), load: loadCpu() });
take();
const end = Date.now() + MINUTES * 60_000;
while (Date.now() < end) {
  await new Promise((r) => setTimeout(r, SAMPLE_S * 1000));
  take();
}
clearInterval(scraper);

/** CPU % of one core and RSS (mean, max) between two sample indexes. */
function window(from, to) {
  const a = samples[from], b = samples[to];
  const dt = b.t - a.t;
  const part = samples.slice(from, to + 1);
  const mib = (x) => (x / 1048576).toFixed(1);
  const rss = (k) => ({ mean: mib(part.reduce((s, x) => s + x[k].rss, 0) / part.length), max: mib(Math.max(...part.map((x) => x[k].rss))) });
  return {
    seconds: Math.round(dt),
    exporter_cpu_pct: ((100 * (b.exp.cpu - a.exp.cpu)) / dt).toFixed(2),
    exporter_rss_mib: rss('exp'),
    bare_node_cpu_pct: ((100 * (b.bare.cpu - a.bare.cpu)) / dt).toFixed(2),
    bare_node_rss_mib: rss('bare'),
    load_cpu_pct: ((100 * (b.load - a.load)) / dt).toFixed(1),
  };
}
const perMin = Math.round(60 / SAMPLE_S);
const last = samples.length - 1;
const report = {
  minutes: MINUTES, scrape_s: SCRAPE_S, scrapes, last_scrape_bytes: bytes, last_scrape_series: series, host_listeners: listeners,
  first_minute: window(0, Math.min(perMin, last)),
  last_minute: window(Math.max(0, last - perMin), last),
  whole_run: window(0, last),
};
console.log(JSON.stringify(report, null, 2));
exporter.kill('SIGTERM');
await new Promise((r) => exporter.on('exit', r));
console.log(`exporter exit: ${exporter.exitCode}`);
process.exit(0);
