// synqueue across network namespaces, with real `ip netns` namespaces: a
// backlog-2 listener (a C program written here, that listens and never
// accepts) with 8 pending connections inside a namespace is seen from the
// host with its exact queue, limit and overflows, and its namespace; the same
// port in two namespaces is two rows; --netns narrows; owners resolve.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { buildC, runRbtrace, settledLeftovers, isCI } from '../helpers.js';

const PROG = String.raw`
/* sqns PORT BACKLOG CONNECTS: listen on 127.0.0.1:PORT, never accept, make
 * CONNECTS non-blocking connections to it, print "ready", hold until stdin EOF. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int port = atoi(argv[1]), n = atoi(argv[3]);
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(s, (void *)&a, sizeof a) || listen(s, atoi(argv[2]))) { perror("listen"); return 1; }
  for (int i = 0; i < n; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(c, F_SETFL, O_NONBLOCK);
    if (connect(c, (void *)&a, sizeof a) && errno != EINPROGRESS) { perror("connect"); return 1; }
  }
  printf("ready\n"); fflush(stdout);
  char b[64];
  while (read(0, b, sizeof b) > 0) {}
  return 0;
}`;

const bin = buildC(PROG, 'sqns');
const tag = `rbt${process.pid}`;
const NS = [`${tag}a`, `${tag}b`];
const PORT = 45123;
const procs: ChildProcess[] = [];

function haveIpNetns(): boolean {
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

after(() => {
  for (const p of procs) p.kill('SIGKILL');
  for (const ns of NS) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // never made
    }
  }
});

/** Start sqns inside namespace `ns` and wait for it to be listening with its connections made. */
async function inNs(ns: string, backlog: number, connects: number): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, bin, String(PORT), String(backlog), String(connects)], { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.on('exit', (c) => reject(new Error(`sqns in ${ns} exited (${c})`)));
  });
  return child;
}

interface Row { addr: string; port: number; netns: number; pid: number | null; comm: string | null; container: string | null;
  accept_queue: number; accept_queue_max: number; accept_limit: number; syn_queue: number; overflows: number; drops: number }
interface Report { listeners: Row[]; netstat: Record<string, number>; namespaces: { netns: number; name: string | null; listeners: number; netstat: Record<string, number> }[] }

function reportsOf(stdout: string): Report[] {
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => Array.isArray(r.listeners));
}

const inode = (ns: string) => statSync(`/run/netns/${ns}`).ino;

test('listeners in other network namespaces: exact queues, limits, overflows, netns; same port twice is two rows', { skip: !isCI && !haveIpNetns() && 'no ip netns' }, async () => {
  for (const ns of NS) {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  // Namespace a: backlog 2, 8 connections: 3 complete and wait in the
  // accept queue (a queue is full when it holds more than its limit), the
  // other 5 keep retrying their SYN. Namespace b: the same port, idle.
  const busy = await inNs(NS[0], 2, 8);
  const idle = await inNs(NS[1], 2, 0);
  const [inoA, inoB] = NS.map(inode);
  assert.notEqual(inoA, inoB);
  // ss inside the namespace is the independent oracle for the queue now.
  const ss = execFileSync('ip', ['netns', 'exec', NS[0], 'ss', '-ltnH', `sport = :${PORT}`], { encoding: 'utf8' }).trim().split(/\s+/);
  const [ssRecvQ, ssSendQ] = [Number(ss[1]), Number(ss[2])];
  assert.deepEqual([ssRecvQ, ssSendQ], [3, 2], `ss -ltn in ${NS[0]}: ${ss.join(' ')}`);

  // Overflows: the 5 connections left out retransmit their SYN (after 1 s,
  // then 3 s, ...): each retransmission finds the accept queue full.
  // TcpExt ListenOverflows of namespace a is the oracle for the count.
  const f = await runRbtrace(['synqueue', '--json', '-i', '1', '-d', '3.5', '--port', String(PORT)]);
  assert.equal(f.code, 0, f.stderr);
  const rs = reportsOf(f.stdout);
  assert.ok(rs.length >= 3, f.stdout);
  for (const r of rs) {
    const mine = r.listeners.filter((l) => l.netns === inoA || l.netns === inoB);
    assert.equal(mine.length, 2, `one row per namespace: ${JSON.stringify(r.listeners)}`);
    const a = mine.find((l) => l.netns === inoA)!;
    const b = mine.find((l) => l.netns === inoB)!;
    assert.deepEqual([a.addr, a.port, a.accept_queue, a.accept_limit, a.syn_queue], ['127.0.0.1', PORT, ssRecvQ, ssSendQ, 0]);
    assert.deepEqual([b.accept_queue, b.accept_queue_max, b.accept_limit, b.overflows, b.drops], [0, 0, 2, 0, 0]);
    assert.equal(a.pid, busy.pid, 'owner pid found across namespaces (socket inodes are global)');
    assert.equal(b.pid, idle.pid);
    assert.equal(a.comm, 'sqns');
    assert.equal(a.container, null, 'not in a container cgroup');
    const nsA = r.namespaces.find((n) => n.netns === inoA)!;
    assert.equal(nsA.name, NS[0]);
    // Per namespace TcpExt: this listener is the only one in namespace a,
    // so the namespace's ListenOverflows this interval are its overflows.
    assert.equal(a.overflows, nsA.netstat.ListenOverflows, `interval: listener ${a.overflows}, netns counter ${nsA.netstat.ListenOverflows}`);
    assert.equal(r.namespaces.find((n) => n.netns === inoB)!.netstat.ListenOverflows, 0);
  }
  const total = rs.reduce((n, r) => n + r.listeners.find((l) => l.netns === inoA)!.overflows, 0);
  assert.ok(total >= 5, `the 5 waiting connections retransmitted their SYN at least once in 3.5 s: ${total}`);

  // --netns narrows, by name and by inode; the table marks the namespace only when several show.
  const one = await runRbtrace(['synqueue', '--json', '-d', '1.2', '--port', String(PORT), '--netns', NS[1]]);
  assert.equal(one.code, 0, one.stderr);
  const oneRows = reportsOf(one.stdout).flatMap((r) => r.listeners);
  assert.ok(oneRows.length > 0 && oneRows.every((l) => l.netns === inoB), one.stdout);
  const byIno = await runRbtrace(['synqueue', '--json', '-d', '1.2', '--port', String(PORT), '--netns', String(inoA)]);
  assert.ok(reportsOf(byIno.stdout).flatMap((r) => r.listeners).every((l) => l.netns === inoA), byIno.stdout);

  const table = await runRbtrace(['synqueue', '-d', '1.2', '--port', String(PORT)]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NETNS\s+LISTEN\s+PID\s+COMM/m);
  assert.match(table.stdout, new RegExp(`^${NS[0]}\\s+127\\.0\\.0\\.1:${PORT}\\s+${busy.pid}\\s+sqns\\s+3\\s+3\\s+2\\s+150%`, 'm'));
  const single = await runRbtrace(['synqueue', '-d', '1.2', '--port', String(PORT), '--netns', NS[0]]);
  assert.match(single.stdout, /^LISTEN\s+PID\s+COMM/m, 'one namespace: no NETNS column');

  for (const p of [busy, idle]) p.stdin!.end();
  assert.deepEqual(await settledLeftovers(['dump_listeners', 'dump_listener_files', 'tpb_kfree_skb', 'tpb_synack', 'tpb_data_ready']), []);
});

test('--netns: a bad operand is a one-line usage error', async () => {
  for (const bad of ['/nonexistent/ns', '/etc/hostname', '999999999', 'no-such-netns-name']) {
    const f = await runRbtrace(['synqueue', '--netns', bad, '-d', '1']);
    assert.equal(f.code, 2, `${bad}: ${f.stderr}`);
    assert.match(f.stderr, /^rbtrace synqueue: --netns .+\n$/, bad);
  }
});
