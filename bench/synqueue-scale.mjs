#!/usr/bin/env node
// bench/synqueue-scale: synqueue on a busy node. 10,000 loopback listeners
// spread over the host and several network namespaces (`ip netns add`), a
// few of them with a full accept queue, then `rbtrace synqueue -i 1` in each
// view (table on a pipe, table and chart on a pseudo-terminal, --json), and
// the same with a second rbtrace given by --baseline (e.g. a build of the
// previous commit) in the same run. For each: CPU per interval (user+sys of
// the rbtrace process over 8 intervals once it is attached, startup
// excluded), peak RSS (VmHWM) and how many reports it printed.
// Targets: at most 30 ms of CPU per interval in every view, at most 120 MB RSS.
//
// --rounds R measures each (build, view) R times, alternating builds, and
// reports the median CPU and the highest peak RSS: on a shared machine one
// 8-second sample can be off by a third.
//
//   node bench/synqueue-scale.mjs [--listeners N] [--netns K] [--baseline PATH/bin/rbtrace] [--views table,json,...] [--rounds R]
//   (as root, after npm run build; on a shared machine under the test lock:
//    flock /tmp/rbtrace-tests.lock node bench/synqueue-scale.mjs, as it loads BPF programs)
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const LISTENERS = Number(arg('--listeners', 10000));
const NETNS = Number(arg('--netns', 4));
const BASELINE = arg('--baseline', undefined);
const VIEWS = arg('--views', 'table-pipe,table-tty,chart-tty,json').split(',');
const INTERVALS = 8;
const ROUNDS = Number(arg('--rounds', 1));
const log = (m) => process.stderr.write(`bench: ${m}\n`);
const rbtrace = fileURLToPath(new URL('../bin/rbtrace', import.meta.url));

// Holds N listeners on 127.0.0.1 (kernel-chosen ports, backlog 128), and
// FULL more with backlog 2 and 6 connections each (queues over their limit);
// prints "ready", holds until stdin closes.
const HOLDER = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
static int listener(int backlog, int *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  if (s < 0 || bind(s, (void *)&a, len) || listen(s, backlog)) { perror("listen"); exit(1); }
  getsockname(s, (void *)&a, &len);
  *port = ntohs(a.sin_port);
  return s;
}
int main(int argc, char **argv) {
  int n = atoi(argv[1]), full = atoi(argv[2]), port;
  struct rlimit r = { n + full * 8 + 64, n + full * 8 + 64 };
  if (setrlimit(RLIMIT_NOFILE, &r)) { perror("setrlimit"); return 1; }
  for (int i = 0; i < n; i++) listener(128, &port);
  for (int i = 0; i < full; i++) {
    listener(2, &port);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    for (int k = 0; k < 6; k++) {
      int c = socket(AF_INET, SOCK_STREAM, 0);
      fcntl(c, F_SETFL, O_NONBLOCK);
      if (connect(c, (void *)&a, sizeof a) && errno != EINPROGRESS) { perror("connect"); return 1; }
    }
  }
  printf("ready\n"); fflush(stdout);
  char b[64];
  while (read(0, b, sizeof b) > 0) {}
  return 0;
}`;

// A pseudo-terminal for the TTY views: python's pty module runs rbtrace on
// one (50 rows, 160 columns), prints its pid, and throws its output away.
const PTY = `
import fcntl, os, pty, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 50, 160, 0, 0))
print(pid, flush=True)
n = 0
tail = b''
while True:
    try:
        d = os.read(fd, 65536)
    except OSError:
        break
    if not d:
        break
    k = d.count(b'TcpExt')
    if k and n == 0:
        print('first report', flush=True)
    n += k
    tail = (tail + d)[-2000:]
os.waitpid(pid, 0)
print('reports', n, flush=True)
print(tail.decode('utf8', 'replace'), flush=True)
`;

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-bench-'));
writeFileSync(join(dir, 'holder.c'), HOLDER);
execFileSync('cc', ['-O2', '-o', join(dir, 'holder'), join(dir, 'holder.c')]);
writeFileSync(join(dir, 'ptyrun.py'), PTY);

const spaces = [null, ...Array.from({ length: NETNS }, (_, i) => `rbtrace-bench-${process.pid}-${i}`)];
const holders = [];
function cleanup() {
  for (const h of holders) h.kill('SIGKILL');
  for (const ns of spaces) if (ns) try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ }
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const per = Math.ceil(LISTENERS / spaces.length);
for (const ns of spaces) {
  if (ns) {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  const argv = [join(dir, 'holder'), String(per - 5), '5'];
  const h = spawn(ns ? 'ip' : argv[0], ns ? ['netns', 'exec', ns, ...argv] : argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  holders.push(h);
  await new Promise((resolve, reject) => {
    h.stdout.once('data', resolve);
    h.on('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });
}
log(`${per * spaces.length} listeners in ${spaces.length} network namespaces (host + ${NETNS})`);

const cpuOf = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // ms, at 100 ticks/s
};
const hwmOf = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Run one rbtrace in one view; returns { cpuMs per interval, rssMb, reports }. */
async function measure(bin, view) {
  const base = ['synqueue', '-v', '-i', '1', '-d', String(INTERVALS + 5)];
  const extra = { 'table-pipe': [], 'table-tty': ['--table'], 'chart-tty': ['--chart'], json: ['--json'] }[view];
  const tty = view.endsWith('-tty');
  // The file itself, as a user runs it: its #! line carries node's flags.
  const argv = [bin, ...base, ...extra];
  const child = tty
    ? spawn('python3', [join(dir, 'ptyrun.py'), ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm' } })
    : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  let err = '';
  let reports = 0;
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    if (!tty) reports += (d.match(/TcpExt|"attach"/g) ?? []).length;
    if (out.length > 1 << 16) out = out.slice(0, 64) + out.slice(-4096);
  });
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const done = new Promise((r) => child.on('close', r));
  let pid = child.pid;
  if (tty) {
    while (!/^\d+\n/.test(out)) {
      if (child.exitCode !== null) throw new Error(`pty helper failed: ${err}`);
      await sleep(20);
    }
    pid = Number(out.split('\n')[0]);
  }
  // Every view is measured from 1.5 s after its first report (the first,
  // full walk and the collection after it are start-up): on a pipe that
  // report is seen on stdout, on the pty the helper says "first report".
  const t0 = Date.now();
  while (!tty && reports === 0 && Date.now() - t0 < 30000) await sleep(20);
  while (tty && !/first report/.test(out) && Date.now() - t0 < 30000) await sleep(20);
  await sleep(1500);
  let c0, c1, rss;
  try {
    c0 = cpuOf(pid);
    await sleep(INTERVALS * 1000);
    c1 = cpuOf(pid);
    rss = hwmOf(pid);
    // A tool that cannot keep up may overrun -d by minutes (the old table
    // mode did): give it 10 s to finish, then stop it.
    const late = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, 10000);
    await done;
    clearTimeout(late);
  } catch (e) {
    await done;
    throw new Error(`rbtrace ${view} ended early: ${err.slice(-2000)} ${out.slice(-2000)}`);
  }
  if (tty) reports = Number(/reports (\d+)/.exec(out)?.[1] ?? 0);
  return { cpu: (c1 - c0) / INTERVALS, rss, reports };
}

const bins = [['this checkout', rbtrace], ...(BASELINE ? [['baseline', BASELINE]] : [])];
const results = [];
try {
  for (const view of VIEWS) {
    const runs = new Map(bins.map(([name]) => [name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, bin] of bins) {
        const r = await measure(bin, view);
        runs.get(name).push(r);
        log(`${name} ${view}: ${r.cpu.toFixed(1)} ms CPU/interval, ${r.rss.toFixed(0)} MB peak RSS, ${r.reports} reports`);
      }
    }
    for (const [name, rs] of runs) {
      const cpus = rs.map((r) => r.cpu).sort((a, b) => a - b);
      results.push({ name, view, cpu: cpus[(cpus.length - 1) >> 1], rss: Math.max(...rs.map((r) => r.rss)), reports: Math.min(...rs.map((r) => r.reports)),
        all: cpus.map((c) => c.toFixed(1)).join(' ') });
    }
  }
} finally {
  cleanup();
}
console.log(`\nrbtrace synqueue -i 1, ${per * spaces.length} listeners in ${spaces.length} network namespaces, ${INTERVALS} intervals measured, ${ROUNDS} round(s): median CPU (all rounds), highest peak RSS\n`);
console.log('rbtrace          view         CPU/interval   peak RSS   reports (of ~' + (INTERVALS + 5) + ')');
for (const r of results) {
  const ok = r.cpu <= 30 && r.rss <= 120;
  console.log(`${r.name.padEnd(16)} ${r.view.padEnd(12)} ${(r.cpu.toFixed(1) + ' ms').padStart(12)}   ${(r.rss.toFixed(0) + ' MB').padStart(8)}   ${String(r.reports).padStart(4)}   ${(r.name === 'this checkout' ? (ok ? 'OK' : 'OVER') : '').padEnd(4)}  ${ROUNDS > 1 ? `(${r.all})` : ''}`);
}
console.log('\ntargets: <= 30 ms CPU per interval, <= 120 MB peak RSS');
