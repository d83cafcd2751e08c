// tcplife and tcpretrans in the kernel matrix (test/vm/matrix.sh --files
// dist/test/vm/guest/tcp.check.js): one exact check per attach path each
// kernel offers. Every path is a tracepoint (sock:inet_sock_set_state 4.16+,
// tcp:tcp_retransmit_skb 4.15+, tcp:tcp_retransmit_synack 4.14+), offered
// wherever tracefs (tracepoint), BTF (tp_btf) or raw tracepoints (raw_tp)
// show the event: decided here from tracefs. tcpretrans -l's optional
// programs (fentry, else kprobe, on tcp_send_loss_probe) are checked where
// the kernel has the symbol.
//
// No packet loss tools in the guest (its kernel's modules are not there:
// no veth, no nf_tables): the retransmits come from a full accept queue
// (test/checks/tcpretrans-fullq.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { REPORT_ON_STDOUT, buildC, runRbtrace } from '../../helpers.js';
import { fullQueueRetransCheck } from '../../checks/tcpretrans-fullq.js';
import { tailLossProbeCheck } from '../../checks/tcpretrans-tlp.js';

const KERNEL = release();
const kallsyms = readFileSync('/proc/kallsyms', 'utf8');
const hasSymbol = (name: string) => new RegExp(`^\\S+ [Tt] ${name}$`, 'm').test(kallsyms);
const tracefs = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].find((d) => existsSync(`${d}/events`));
const hasTracepoint = (cat: string, name: string) => tracefs !== undefined && existsSync(`${tracefs}/events/${cat}/${name}`);
const jsonLines = (s: string) => s.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

// One loopback connection with known bytes: connect, send SEND bytes, the
// accepted side answers REPLY bytes and closes, the client reads to EOF and closes.
const CONN = buildC(String.raw`
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int send_n = atoi(argv[1]), reply_n = atoi(argv[2]);
  static char buf[65536];
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (void *)&a, sizeof a) || listen(l, 4) || getsockname(l, (void *)&a, &len)) return 1;
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (void *)&a, sizeof a)) return 2;
  int s = accept(l, 0, 0);
  for (int left = send_n; left > 0;) { int n = write(c, buf, left < (int)sizeof buf ? left : (int)sizeof buf); if (n <= 0) return 3; left -= n;
    for (int got = 0; got < n;) { int m = read(s, buf, n - got); if (m <= 0) return 4; got += m; } }
  for (int left = reply_n; left > 0;) { int n = write(s, buf, left); if (n <= 0) return 5; left -= n; }
  shutdown(c, SHUT_WR);
  while (read(s, buf, sizeof buf) > 0) {}
  close(s);
  int got = 0, n;
  while ((n = read(c, buf, sizeof buf)) > 0) got += n;
  close(c);
  return got == reply_n ? 0 : 6;
}`, 'tcpconn');

for (const path of ['tp_btf', 'raw_tp', 'tracepoint']) {
  const offered = hasTracepoint('sock', 'inet_sock_set_state');
  test(`${KERNEL} tcplife [${path}]: ${offered ? 'one connection, exact bytes both ends' : 'not offered (no sock:inet_sock_set_state)'}`, async () => {
    const r = await runRbtrace(['tcplife', '--json', '-v', '--attach', path, ...REPORT_ON_STDOUT, '--', CONN, '70000', '1234'], { timeoutMs: 120000 });
    if (!offered) {
      assert.equal(r.code, 1, r.stderr);
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`attach path: ${path}\\b`));
    const recs = jsonLines(r.stdout);
    assert.equal(recs.length, 2, r.stdout);
    const client = recs.find((x) => x.owner === 'connect');
    const server = recs.find((x) => x.owner === 'close');
    assert.ok(client && server, r.stdout);
    assert.deepEqual([client.tx_bytes, client.rx_bytes, server.tx_bytes, server.rx_bytes], [70000, 1234, 1234, 70000]);
    assert.deepEqual([client.lport, client.rport], [server.rport, server.lport]);
    assert.equal(client.comm, 'tcpconn');
  });
}

for (const path of ['tp_btf', 'raw_tp', 'tracepoint']) {
  const offered = hasTracepoint('tcp', 'tcp_retransmit_skb') && hasTracepoint('tcp', 'tcp_retransmit_synack');
  test(`${KERNEL} tcpretrans [${path}]: ${offered ? 'SYN and SYN-ACK retransmits: segments = RetransSegs' : 'not offered'}`, async (t) => {
    if (!offered) {
      const f = await runRbtrace(['tcpretrans', '--attach', path, '-d', '0'], { timeoutMs: 120000 });
      assert.equal(f.code, 1, f.stderr);
      return;
    }
    await fullQueueRetransCheck({ path, timeoutMs: 120000, diagnostic: (line) => t.diagnostic(line) });
  });
}

// -l: fentry on tcp_send_loss_probe where the kernel allows it, else the
// kprobe (RBTRACE_REFUSE refuses fentry as a kernel would); each attached
// or left out for the reason stated.
const hasTlp = hasSymbol('tcp_send_loss_probe');
for (const refuse of ['', 'fe_tlp']) {
  test(`${KERNEL} tcpretrans -l${refuse ? ' without fentry' : ''}: ${hasTlp ? (refuse ? 'the kprobe' : 'fentry (or the kprobe)') : 'no tcp_send_loss_probe symbol'}`, async () => {
    const f = await runRbtrace(['tcpretrans', '-l', '-v', '-d', '0'], { timeoutMs: 120000, env: refuse ? { RBTRACE_REFUSE: refuse } : {} });
    assert.equal(f.code, 0, f.stderr);
    if (!hasTlp) {
      assert.match(f.stderr, /tail-loss probes are not traced/);
      return;
    }
    if (refuse) {
      assert.match(f.stderr, /optional program fe_tlp left out: fentry (attach )?refused/);
      assert.doesNotMatch(f.stderr, /kp_tlp left out|tail-loss probes are not traced/);
    } else {
      // fentry where allowed (x86 and arm64 6.4+); arm64 6.1 refuses it (524): the kprobe then.
      assert.doesNotMatch(f.stderr, /kp_tlp left out|tail-loss probes are not traced/);
    }
  });
}

// The probes' count: tail-loss probes forced by a receiver that drops every
// segment for a while (test/checks/tcpretrans-tlp.ts), = TCPLossProbes.
// Every kernel of the matrix has tcp_send_loss_probe.
test(`${KERNEL} tcpretrans -l: tlp events = the namespace's TCPLossProbes`, async () => {
  await tailLossProbeCheck({ timeoutMs: 120000 });
});
