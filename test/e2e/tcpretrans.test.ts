// tcpretrans against real loss: two network namespaces joined by a veth
// pair, nftables in the server's namespace dropping 1 in 8 of the data
// segments that come in (netem, the usual tool, is not in every kernel).
// The client's retransmits are counted by the kernel in its namespace's
// TcpRetransSegs: `nstat` before and after, inside that namespace, is the
// oracle. Each event's segment count is the skb's (what TcpRetransSegs adds).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCI, runRbtrace, settledLeftovers, sleep, startRbtrace } from '../helpers.js';

const tag = `rbtr${process.pid}`;
const [A, B] = [`${tag}a`, `${tag}b`];
const PORT = 45321;
const dir = mkdtempSync(join(tmpdir(), 'rbtrace-tcpretrans-'));
const SERVER = join(dir, 'server.py');
const CLIENT = join(dir, 'client.py');
writeFileSync(SERVER, `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('10.77.0.2', ${PORT})); s.listen()
print('ready', flush=True)
c, _ = s.accept(); n = 0
while True:
    d = c.recv(65536)
    if not d: break
    n += len(d)
c.close(); print(n, flush=True)
`);
// Small writes, spaced: many segments, each its own (TCP_NODELAY), so
// drops are recovered by fast retransmits and RTOs of one segment each.
writeFileSync(CLIENT, `
import socket, time
c = socket.create_connection(('10.77.0.2', ${PORT})); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(300):
    c.sendall(b'x' * 1000); time.sleep(0.002)
c.close()
`);

function sh(args: string[]): string {
  return execFileSync(args[0], args.slice(1), { encoding: 'utf8' });
}

after(() => {
  for (const ns of [A, B]) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // never made
    }
  }
});

function setup(): boolean {
  try {
    sh(['nft', '--version']);
  } catch (err) {
    if (isCI) throw new Error(`nft is needed (scripts/setup.sh installs nftables): ${(err as Error).message}`);
    return false;
  }
  sh(['ip', 'netns', 'add', A]);
  sh(['ip', 'netns', 'add', B]);
  sh(['ip', 'link', 'add', `${tag}x`, 'type', 'veth', 'peer', 'name', `${tag}y`]);
  sh(['ip', 'link', 'set', `${tag}x`, 'netns', A]);
  sh(['ip', 'link', 'set', `${tag}y`, 'netns', B]);
  sh(['ip', '-n', A, 'addr', 'add', '10.77.0.1/24', 'dev', `${tag}x`]);
  sh(['ip', '-n', B, 'addr', 'add', '10.77.0.2/24', 'dev', `${tag}y`]);
  for (const [ns, dev] of [[A, `${tag}x`], [B, `${tag}y`]]) {
    sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  // Data segments only (an IP length over 100): the handshake and the FINs
  // go through, so every retransmit is the client's, of data.
  sh(['ip', 'netns', 'exec', B, 'nft', `add table inet rbtloss; add chain inet rbtloss in { type filter hook input priority 0; }; add rule inet rbtloss in tcp dport ${PORT} ip length > 100 numgen random mod 8 == 0 counter drop`]);
  return true;
}

/** Counters of one namespace now (nstat -a: absolute, -s: no history file, -z: zeros too). */
function nstat(ns: string): Record<string, number> {
  const out = sh(['ip', 'netns', 'exec', ns, 'nstat', '-asz', 'TcpRetransSegs', 'TcpExtTCPLossProbes', 'TcpExtTCPRetransFail']);
  const c: Record<string, number> = {};
  for (const m of out.matchAll(/^(\w+)\s+(\d+)/gm)) c[m[1]] = Number(m[2]);
  return c;
}

interface Ev { type: string; error?: string; state: string; segs: number; laddr: string; lport: number; raddr: string; rport: number; netns: number }

test('tcpretrans: per-event segments equal TcpRetransSegs of the namespace; -c per connection; -l', { timeout: 60000 }, async (t) => {
  if (!setup()) return t.skip('no nft (install nftables)');
  const inoA = statSync(`/run/netns/${A}`).ino;
  const inoB = statSync(`/run/netns/${B}`).ino;

  const events = startRbtrace(['tcpretrans', '--json', '-v', '-l']);
  const counts = startRbtrace(['tcpretrans', '-c', '--json', '-v']);
  await events.ready(40000);
  await counts.ready(40000);
  const before = { a: nstat(A), b: nstat(B) };
  const srv = spawn('ip', ['netns', 'exec', B, 'python3', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  let srvOut = '';
  srv.stdout!.setEncoding('utf8').on('data', (d: string) => (srvOut += d));
  while (!srvOut.includes('ready')) await sleep(20);
  sh(['ip', 'netns', 'exec', A, 'python3', CLIENT]);
  await new Promise((res) => srv.on('close', res));
  assert.match(srvOut, /\n300000\n/, 'the server got every byte');
  await sleep(300); // the last retransmits are in before the readings
  const afterN = { a: nstat(A), b: nstat(B) };
  events.signal('SIGINT');
  counts.signal('SIGINT');
  const [fe, fc] = await Promise.all([events.finished, counts.finished]);
  assert.equal(fe.code, 0, fe.stderr);
  assert.equal(fc.code, 0, fc.stderr);

  const delta = (k: string, ns: 'a' | 'b') => afterN[ns][k] - before[ns][k];
  assert.equal(delta('TcpExtTCPRetransFail', 'a'), 0, 'no failed retransmits (else TcpRetransSegs counts what never went out)');
  const evs = fe.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev).filter((e) => e.type !== undefined);
  const mine = evs.filter((e) => e.netns === inoA);
  const retrans = mine.filter((e) => e.type === 'retrans');
  assert.ok(retrans.length >= 5, `1 in 8 of 300 segments dropped: some retransmits (${retrans.length})`);
  assert.equal(retrans.reduce((n, e) => n + e.segs, 0), delta('TcpRetransSegs', 'a'), 'segments retransmitted in namespace A: tcpretrans vs nstat');
  assert.equal(evs.filter((e) => e.netns === inoB && e.type !== 'tlp').length, delta('TcpRetransSegs', 'b'), 'namespace B: the same (none expected)');
  for (const e of retrans) {
    assert.deepEqual([e.laddr, e.raddr, e.rport, e.error], ['10.77.0.1', '10.77.0.2', PORT, undefined]);
    assert.ok(['ESTABLISHED', 'FIN_WAIT1', 'CLOSING', 'LAST_ACK'].includes(e.state), e.state);
  }

  // -l: tail-loss probes where fentry or kprobes are allowed (not on every
  // kernel: then said on stderr). A probe counted by TCPLossProbes is one
  // call of tcp_send_loss_probe; a call may also send nothing (it rearms
  // the timer), so calls >= TCPLossProbes.
  const tlps = mine.filter((e) => e.type === 'tlp').length;
  if (/tail-loss probes are not traced/.test(fe.stderr)) assert.equal(tlps, 0);
  else assert.ok(tlps >= delta('TcpExtTCPLossProbes', 'a'), `TLP calls ${tlps}, TCPLossProbes ${delta('TcpExtTCPLossProbes', 'a')}`);

  // -c: one connection in namespace A, its count the events' count.
  const rec = fc.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((r) => Array.isArray(r.connections));
  const flows = (rec.connections as (Ev & { retrans: number; segs: number })[]).filter((r) => r.netns === inoA);
  assert.equal(flows.length, 1, JSON.stringify(rec));
  assert.deepEqual([flows[0].retrans, flows[0].segs], [retrans.length, delta('TcpRetransSegs', 'a')]);
  assert.deepEqual(await settledLeftovers(['tpb_retrans', 'tpb_synack', 'rt_retrans', 'tp_retrans', 'fe_tlp', 'kp_tlp']), []);
});

test('tcpretrans refuses -p and -- CMD: retransmits run where no process of the connection is current', async () => {
  const f = await runRbtrace(['tcpretrans', '-p', String(process.pid)]);
  assert.equal(f.code, 2);
  assert.match(f.stderr, /-p does not apply to tcpretrans: retransmits happen in timers and softirqs/);
});
