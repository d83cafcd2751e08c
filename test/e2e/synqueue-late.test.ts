// synqueue, already running, when the node changes under it: a network
// namespace created after it started, with a listener in it, and a listener
// that no process holds (its only reference an SCM_RIGHTS message in flight
// on a unix socket: what the own-namespace TCP walk exists for). synqueue
// lists namespaces and walks its own namespace less often than every
// interval when nothing asks for it (src/tools/synqueue/collect.ts); both
// must still show with their exact queues, the first in the report after it
// appeared, the second once connections reach it. ss -ltn is the oracle.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { startRbtrace, settledLeftovers, sleep } from '../helpers.js';

// python3 (Debian's): listen with backlog 2 on 127.0.0.1, make N connections
// (3 complete and wait: a queue holds its limit + 1), print the port. With
// "inflight": hand the listener to a unix datagram socket as SCM_RIGHTS and
// close it, so that no process has it open; the message is never read.
const LISTENER = `
import array, socket, sys
mode, n = sys.argv[1], int(sys.argv[2])
l = socket.socket()
l.bind(('127.0.0.1', 0))
l.listen(2)
port = l.getsockname()[1]
keep = []
if mode == 'inflight':
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [l.fileno()]))])
    l.close()
    keep = [a, b]
print(port, flush=True)
sys.stdin.readline()
cs = []
for i in range(n):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(('127.0.0.1', port))
    cs.append(c)
print('connected', flush=True)
sys.stdin.read()
`;

const NS = `rbtlate${process.pid}`;
const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) p.kill('SIGKILL');
  try {
    execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  } catch {
    // never made
  }
});

interface Row { port: number; netns: number; pid: number | null; comm: string | null; accept_queue: number; accept_limit: number }
const reports = (stdout: string): { time: string; listeners: Row[] }[] =>
  stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => Array.isArray(r.listeners));

/** Start the python listener (in `ns` if given); resolves with it and its port. */
async function listener(mode: 'held' | 'inflight', n: number, ns?: string): Promise<{ proc: ChildProcess; port: number; lines: string[] }> {
  const argv = ['python3', '-c', LISTENER, mode, String(n)];
  const proc = spawn(ns ? 'ip' : argv[0], ns ? ['netns', 'exec', ns, ...argv] : argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(proc);
  const lines: string[] = [];
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)));
  while (lines.length === 0) {
    if (proc.exitCode !== null) throw new Error(`listener exited ${proc.exitCode}`);
    await sleep(20);
  }
  return { proc, port: Number(lines[0]), lines };
}

async function connected(l: { proc: ChildProcess; lines: string[] }): Promise<void> {
  l.proc.stdin!.write('go\n');
  while (!l.lines.includes('connected')) await sleep(20);
  await sleep(300); // the handshakes are done well within this on loopback
}

test('a namespace made after synqueue started, and a listener no process holds: both show with their exact queues', async () => {
  const r = startRbtrace(['synqueue', '--json', '-v', '-i', '1', '-d', '7']);
  await r.ready(30000);
  await sleep(1500); // a report or two before anything exists

  execFileSync('ip', ['netns', 'add', NS]);
  execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  const inNs = await listener('held', 5, NS);
  await connected(inNs);
  const nsIno = statSync(`/run/netns/${NS}`).ino;
  const bornNs = Date.now();

  const ghost = await listener('inflight', 5);
  await connected(ghost);
  const ss = execFileSync('ss', ['-ltnpH', `sport = :${ghost.port}`], { encoding: 'utf8' }).trim();
  assert.match(ss, /^LISTEN\s+3\s+2\s/, `ss: the listener no process holds: ${ss}`);
  assert.doesNotMatch(ss, /users:/, 'ss finds no process holding it');
  const bornGhost = Date.now();

  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  const rs = reports(f.stdout);
  // The first report more than an interval after it appeared has it.
  const firstAfter = (t: number) => rs.find((x) => Date.parse(x.time) > t + 1100);
  const a = firstAfter(bornNs)?.listeners.find((l) => l.port === inNs.port && l.netns === nsIno);
  assert.ok(a, `the new namespace's listener in the next report: ${f.stdout.slice(-3000)}`);
  assert.deepEqual([a.accept_queue, a.accept_limit, a.comm], [3, 2, 'python3']);
  assert.ok(a.pid !== null && a.pid > 0);
  const g = firstAfter(bornGhost)?.listeners.find((l) => l.port === ghost.port);
  assert.ok(g, `the listener no process holds, once connections reached it: ${f.stdout.slice(-3000)}`);
  assert.deepEqual([g.accept_queue, g.accept_limit, g.pid, g.comm], [3, 2, null, null]);
  assert.equal(g.netns, statSync('/proc/self/ns/net').ino);

  for (const p of procs) p.stdin!.end();
  assert.deepEqual(await settledLeftovers(['dump_listeners', 'dump_listener_files', 'tpb_kfree_skb', 'tpb_synack', 'tpb_data_ready']), []);
});
