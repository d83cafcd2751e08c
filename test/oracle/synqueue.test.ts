// Oracle: synqueue against ss -ltn (the accept queue's length) and nstat
// (TcpExtListenOverflows), in a fresh network namespace so that nstat's
// counters hold only this test's overflows and no other listener is seen.
// The listeners are real programs (python3, perl) that listen with a small
// backlog and never accept; a driver connects more clients than fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RBTRACE } from '../helpers.js';
import { tempDir } from './compare.js';
import { spawnSync } from 'node:child_process';

const dir = tempDir('synq');
const PORT = 7171;
const BACKLOG = 4;
const CLIENTS = 12;

// The driver: starts the listener, connects CLIENTS non-blocking clients
// (BACKLOG + 1 fit in the accept queue, the others' SYNs overflow, and are
// retransmitted after 1 s: more overflows), takes ss's view while they wait,
// closes them (no more SYNs), reads nstat, then keeps the listener open for
// two of synqueue's 1 s intervals so a report covers every overflow.
const DRIVER = `
import socket, subprocess, sys, time
listener = subprocess.Popen(sys.argv[2:])
for _ in range(200):
    if ':${PORT} ' in subprocess.run(['ss', '-ltnH'], capture_output=True, text=True).stdout: break
    time.sleep(0.02)
cs = []
for i in range(${CLIENTS}):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(('127.0.0.1', ${PORT}))
    except BlockingIOError: pass
    cs.append(c)
time.sleep(2.5)
ss = subprocess.run(['ss', '-ltnH', 'sport = :${PORT}'], capture_output=True, text=True).stdout
for c in cs: c.close()
time.sleep(0.3)
nstat = subprocess.run(['nstat', '-az', 'TcpExtListenOverflows'], capture_output=True, text=True).stdout
open(sys.argv[1], 'w').write(ss + nstat)
time.sleep(2.2)
listener.kill()
`;
const driver = join(dir, 'driver.py');
writeFileSync(driver, DRIVER);

const LISTENERS: [string, string[]][] = [
  ['python3', ['/usr/bin/python3', '-c', `import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', ${PORT})); s.listen(${BACKLOG}); time.sleep(60)`]],
  ['perl', ['perl', '-MIO::Socket::INET', '-e', `my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => ${PORT}, Listen => ${BACKLOG}, ReuseAddr => 1) or die; sleep 60`]],
];

for (const [name, listener] of LISTENERS) {
  test(`synqueue = ss -ltn and nstat: a ${name} listener that never accepts`, () => {
    const ns = `rbtrace-oracle-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      const out = join(dir, `${name}.out`);
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, RBTRACE, 'synqueue', '--json', '-i', '1', '--', '/usr/bin/python3', driver, out, ...listener],
        { encoding: 'utf8', timeout: 60000, env: { ...process.env, NO_COLOR: '1' } });
      assert.equal(r.status, 0, r.stderr);
      const reports = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const mine = reports.flatMap((x) => (x.listeners ?? []).filter((l: { port: number }) => l.port === PORT));
      assert.ok(mine.length >= 2, r.stderr);
      const [ssLine, ...nstatLines] = readFileSync(out, 'utf8').trim().split('\n');
      const recvQ = Number(ssLine.trim().split(/\s+/)[1]);
      const overflows = Number(nstatLines.find((l) => l.startsWith('TcpExtListenOverflows'))!.split(/\s+/)[1]);
      // Exact: the queue cannot move (nobody accepts, the others overflow),
      // and the namespace is new, so nstat's count is this test's alone.
      assert.equal(recvQ, BACKLOG + 1, 'ss: the accept queue holds backlog + 1');
      assert.equal(Math.max(...mine.map((l) => l.accept_queue_max)), recvQ, 'accept_queue_max = ss Recv-Q');
      assert.ok(overflows >= CLIENTS - BACKLOG - 1, `nstat saw ${overflows} overflows`);
      assert.equal(mine.reduce((n, l) => n + l.overflows, 0), overflows, 'listener overflows = nstat ListenOverflows');
      assert.equal(reports.reduce((n, x) => n + (x.netstat?.ListenOverflows ?? 0), 0), overflows, 'netstat deltas = nstat');
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
}
