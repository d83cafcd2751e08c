#!/usr/bin/env node
// bench/synqueue: cost of watching listen queues on a connection-heavy
// workload. `ab -n 20000 -c 50` (no keep-alive: one connection per request)
// against a tiny C HTTP server on 127.0.0.1, in three setups interleaved
// round by round: plain, with `rbtrace synqueue` attached, and with a
// bpftrace one-liner doing the same job (accept queue max per listener at
// each enqueue, overflow count). Prints the median req/s of each and ratios.
// Target: synqueue costs at most 3% of the plain req/s.
//
//   node bench/synqueue.mjs [rounds]      (as root, after npm run build)
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const rounds = Number(process.argv[2] ?? 3);
const log = (m) => process.stderr.write(`bench: ${m}\n`);
const rbtrace = fileURLToPath(new URL('../bin/rbtrace', import.meta.url));

const SERVER = String.raw`
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  if (bind(s, (void *)&a, len) || listen(s, 4096)) { perror("listen"); return 1; }
  getsockname(s, (void *)&a, &len);
  printf("%d\n", ntohs(a.sin_port)); fflush(stdout);
  static const char resp[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  char buf[4096];
  for (;;) {
    int c = accept(s, 0, 0);
    if (c < 0) continue;
    if (read(c, buf, sizeof buf) > 0) write(c, resp, sizeof resp - 1);
    close(c);
  }
}`;

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-bench-'));
writeFileSync(join(dir, 'srv.c'), SERVER);
execFileSync('cc', ['-O2', '-o', join(dir, 'srv'), join(dir, 'srv.c')]);
const server = spawn(join(dir, 'srv'), [], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve) => server.stdout.once('data', (d) => resolve(Number(String(d).trim()))));

const BPFTRACE = `tracepoint:sock:sk_data_ready { $sk = (struct sock *)args->skaddr;
  if ($sk->__sk_common.skc_state == 10) { @max[$sk->__sk_common.skc_num] = max($sk->sk_ack_backlog);
    @hist[$sk->__sk_common.skc_num] = hist($sk->sk_ack_backlog); } }
tracepoint:skb:kfree_skb /args->reason == 40/ { @overflows[args->rx_sk] = count(); }
interval:s:1 { print(@max); clear(@max); }`;

function ab() {
  const r = spawnSync('ab', ['-q', '-n', '20000', '-c', '50', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const m = r.stdout.match(/Requests per second:\s+([\d.]+)/);
  if (!m) throw new Error(`ab failed: ${r.stderr || r.stdout}`);
  const failed = Number(r.stdout.match(/Failed requests:\s+(\d+)/)?.[1] ?? 0);
  if (failed) throw new Error(`ab: ${failed} failed requests`);
  return Number(m[1]);
}

/** Start a tracer, wait until it is attached, run ab, stop the tracer. */
async function withTracer(argv, readyRe) {
  // rbtrace says it on stderr, bpftrace on stdout: watch both.
  const t = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  await new Promise((resolve, reject) => {
    const watch = (d) => { if (err.length < 4096) err += d; if (readyRe.test(err)) resolve(); };
    t.stderr.setEncoding('utf8').on('data', watch);
    t.stdout.setEncoding('utf8').on('data', watch);
    t.on('exit', (code) => reject(new Error(`${argv.join(' ')} exited (${code}): ${err}`)));
  });
  await new Promise((r) => setTimeout(r, 300));
  const rps = ab();
  t.removeAllListeners('exit');
  const done = new Promise((r) => t.on('exit', r));
  t.kill('SIGINT');
  await done;
  return rps;
}

const cases = {
  plain: async () => ab(),
  'rbtrace synqueue': () => withTracer([process.execPath, rbtrace, 'synqueue', '-v', '--json', '-i', '1'], /probes attached/),
  'bpftrace one-liner': () => withTracer(['bpftrace', '-e', BPFTRACE], /Attaching \d+ probes/),
};

const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
try {
  ab(); // warm up
  for (let i = 0; i < rounds; i++) {
    for (const [name, run] of Object.entries(cases)) {
      samples[name].push(await run());
      log(`round ${i + 1} ${name}: ${samples[name].at(-1).toFixed(0)} req/s`);
    }
  }
} finally {
  server.kill('SIGKILL');
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const plain = median(samples.plain);
console.log(`ab -n 20000 -c 50 against a C server on 127.0.0.1, median of ${rounds} rounds\n`);
console.log('case                   req/s      vs plain   runs');
for (const [name, s] of Object.entries(samples)) {
  const m = median(s);
  console.log(`${name.padEnd(22)} ${m.toFixed(0).padStart(8)}   ${((m / plain - 1) * 100).toFixed(1).padStart(6)}%   ${s.map((x) => x.toFixed(0)).join(' ')}`);
}
const cost = (1 - median(samples['rbtrace synqueue']) / plain) * 100;
console.log(`\nsynqueue costs ${cost.toFixed(1)}% of plain req/s (target <= 3%): ${cost <= 3 ? 'OK' : 'OVER'}`);
