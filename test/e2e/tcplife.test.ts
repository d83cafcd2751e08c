// tcplife against connections this test makes, with byte counts and
// lifetimes it knows: over loopback (IPv4 and IPv6) and inside an `ip netns`
// namespace. Bytes must be exact (payload, each way, both ends); lifetimes
// within a tolerance of what the connecting program measured itself; the
// namespace is the inode of /run/netns/NAME; the owner is the program's pid.
// A long-lived connection is compared with `ss -ti` (the kernel's own
// bytes_acked/bytes_received) while it is open.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCI, settledLeftovers, sleep, startRbtrace } from '../helpers.js';

// One connection: the client connects, sends SEND bytes, the server answers
// REPLY bytes once it has them all, the connection stays open HOLD ms (or
// until stdin closes, with HOLD -1), then the client shuts down its side and
// both close. The server listens on PORT if given, else on any free port. The
// client prints its pid, ports and the lifetime it measured: from connect()
// returning (the connection is ESTABLISHED by then) to its close() returning.
const CONN = String.raw`
import json, os, socket, sys, threading, time
fam, host, send, reply, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
want_port = int(sys.argv[6]) if len(sys.argv) > 6 else 0
af = socket.AF_INET6 if fam == '6' else socket.AF_INET
srv = socket.socket(af); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind((host, want_port)); srv.listen(1)
port = srv.getsockname()[1]
def read_exactly(s, n):
    got = 0
    while got < n:
        d = s.recv(min(65536, n - got))
        assert d, got
        got += len(d)
def serve():
    c, _ = srv.accept()
    read_exactly(c, send)
    c.sendall(b'r' * reply)
    assert c.recv(1) == b''
    c.close()
t = threading.Thread(target=serve); t.start()
c = socket.socket(af); c.connect((host, port)); t0 = time.monotonic()
c.sendall(b's' * send)
read_exactly(c, reply)
info = {'pid': os.getpid(), 'server_port': port, 'client_port': c.getsockname()[1]}
if hold < 0:
    print(json.dumps(info), flush=True); sys.stdin.read()
else:
    time.sleep(hold / 1000)
c.shutdown(socket.SHUT_WR)
assert c.recv(1) == b''
c.close(); t1 = time.monotonic(); t.join()
info['ms'] = (t1 - t0) * 1000
print(json.dumps(info), flush=True)
`;

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-tcplife-'));
const script = join(dir, 'conn.py');
writeFileSync(script, CONN);
const NS = `rbtl${process.pid}`;

after(() => {
  try {
    execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
  } catch {
    // never made
  }
});

interface Info { pid: number; server_port: number; client_port: number; ms: number }
interface Rec {
  pid: number; comm: string; owner: string; family: string; laddr: string; lport: number; raddr: string; rport: number;
  tx_bytes: number; rx_bytes: number; duration_ns: number; netns: number;
}

function conn(args: string[], prefix: string[] = []): Info {
  const out = execFileSync(prefix[0] ?? 'python3', [...prefix.slice(1), ...(prefix.length ? ['python3'] : []), script, ...args], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Info;
}

/** The two records of one connection: the client's end and the server's. */
function ends(recs: Rec[], c: Info): { client: Rec; server: Rec } {
  const client = recs.filter((r) => r.lport === c.client_port && r.rport === c.server_port);
  const server = recs.filter((r) => r.lport === c.server_port && r.rport === c.client_port);
  assert.equal(client.length, 1, `one record for the client end: ${JSON.stringify(recs)}`);
  assert.equal(server.length, 1, `one record for the server end: ${JSON.stringify(recs)}`);
  return { client: client[0], server: server[0] };
}

const ownNetns = statSync('/proc/self/ns/net').ino;

// Lifetimes: tcplife's runs from the last state change to ESTABLISHED
// (inside connect(), before the client's clock starts) to CLOSE (for the
// client, when the server's FIN arrives, before the client's close()
// returns). Both ends are on this host's monotonic clock; the gap between
// them is a few syscalls and one loopback round trip, plus scheduling
// (2 CPUs, other tests' load): 25 ms covers it.
const TOLERANCE_MS = 25;

test('tcplife: exact bytes, lifetimes, owners and namespaces of connections made here (loopback v4/v6, ip netns)', { timeout: 60000 }, async () => {
  let nsReady = true;
  try {
    execFileSync('ip', ['netns', 'add', NS]);
    execFileSync('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    if (isCI) throw err;
    nsReady = false;
  }
  const r = startRbtrace(['tcplife', '--json', '-v']);
  await r.ready(40000);
  const v4 = conn(['4', '127.0.0.1', '100000', '2345', '300']);
  const v6 = conn(['6', '::1', '7', '0', '50']);
  const inNs = nsReady ? conn(['4', '127.0.0.1', '54321', '999', '200'], ['ip', 'netns', 'exec', NS]) : undefined;

  // A long-lived one: ss -ti reads the kernel's counters while it is open.
  const live = spawn('python3', [script, '4', '127.0.0.1', '65536', '4096', '-1'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let liveOut = '';
  live.stdout!.setEncoding('utf8').on('data', (d: string) => (liveOut += d));
  while (!liveOut.includes('\n')) await sleep(20);
  const liveInfo = JSON.parse(liveOut.split('\n')[0]) as Info;
  await sleep(200); // everything sent is acked over loopback by then
  const ssOf = (src: number, dst: number) => {
    const text = execFileSync('ss', ['-tinH', 'src', `127.0.0.1:${src}`, 'dst', `127.0.0.1:${dst}`], { encoding: 'utf8' });
    return { text, acked: Number(/bytes_acked:(\d+)/.exec(text)?.[1] ?? 0), received: Number(/bytes_received:(\d+)/.exec(text)?.[1] ?? 0) };
  };
  const ssClient = ssOf(liveInfo.client_port, liveInfo.server_port);
  const ssServer = ssOf(liveInfo.server_port, liveInfo.client_port);
  live.stdin!.end();
  await new Promise((res) => live.on('close', res));

  await sleep(300);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  const recs = f.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec);

  const check = (c: Info, send: number, reply: number, family: string, addr: string, netns: number) => {
    const { client, server } = ends(recs, c);
    assert.deepEqual([client.tx_bytes, client.rx_bytes], [send, reply], 'client end: bytes sent, received');
    assert.deepEqual([server.tx_bytes, server.rx_bytes], [reply, send], 'server end: bytes sent, received');
    for (const e of [client, server]) {
      assert.deepEqual([e.family, e.laddr, e.raddr, e.netns, e.pid, e.comm], [family, addr, addr, netns, c.pid, 'python3']);
    }
    assert.equal(client.owner, 'connect');
    assert.equal(server.owner, 'close', 'the accepting side is named by its close()');
    const ms = client.duration_ns / 1e6;
    assert.ok(Math.abs(ms - c.ms) <= TOLERANCE_MS, `client lifetime ${ms.toFixed(2)} ms, measured by the program ${c.ms.toFixed(2)} ms`);
  };
  check(v4, 100000, 2345, 'ipv4', '127.0.0.1', ownNetns);
  check(v6, 7, 0, 'ipv6', '::1', ownNetns);
  if (inNs) check(inNs, 54321, 999, 'ipv4', '127.0.0.1', statSync(`/run/netns/${NS}`).ino);

  // ss -ti on the live connection: bytes_acked counts the SYN too on the
  // connecting side (sequence numbers), no FIN was sent yet; what tcplife
  // reports at close is the same payload (the FINs taken off).
  assert.deepEqual([ssClient.acked, ssClient.received], [65536 + 1, 4096], `ss: ${ssClient.text}`);
  assert.deepEqual([ssServer.acked, ssServer.received], [4096, 65536], `ss: ${ssServer.text}`);
  const live2 = ends(recs, liveInfo);
  assert.deepEqual([live2.client.tx_bytes, live2.client.rx_bytes], [ssClient.acked - 1, ssClient.received]);
  assert.deepEqual([live2.server.tx_bytes, live2.server.rx_bytes], [ssServer.acked, ssServer.received]);
  assert.deepEqual(await settledLeftovers(['tpb_state', 'rt_state', 'tp_state']), []);
});

test('tcplife -6 -D PORT: only IPv6 connections to that remote port', { timeout: 60000 }, async () => {
  const PORT = 45679;
  const r = startRbtrace(['tcplife', '--json', '-v', '-6', '-D', String(PORT)]);
  await r.ready(40000);
  const v4 = conn(['4', '127.0.0.1', '10', '10', '0', String(PORT)]);
  const v6 = conn(['6', '::1', '10', '10', '0', String(PORT)]);
  const other = conn(['6', '::1', '10', '10', '0']);
  await sleep(300);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  const recs = f.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec);
  const ours = recs.filter((x) => [v4, v6, other].some((c) => [c.client_port, c.server_port].includes(x.lport)));
  // Only the v6 client's end: its remote port is PORT (the server's end has the client's port as remote).
  assert.deepEqual(ours.map((x) => [x.family, x.lport, x.rport]), [['ipv6', v6.client_port, PORT]]);
});

test('tcplife bad options: one line, exit 2', { timeout: 60000 }, async () => {
  const { runRbtrace } = await import('../helpers.js');
  for (const [args, re] of [
    [['-L', '0'], /-L wants port numbers from 1 to 65535/],
    [['-L', '1,2,3,4,5,6,7,8,9'], /-L takes at most 8 ports/],
    [['-4', '-6'], /-4 and -6 exclude each other/],
    [['-i', '1'], /-i does not apply to tcplife/],
  ] as [string[], RegExp][]) {
    const f = await runRbtrace(['tcplife', ...args]);
    assert.equal(f.code, 2, f.stderr);
    assert.match(f.stderr, re);
    assert.equal(f.stderr.trim().split('\n').length, 1, f.stderr);
  }
});
