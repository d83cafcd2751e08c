// tcpretrans -l against the kernel's own count of tail-loss probes, for the
// kernel matrix (test/vm/guest/tcp.check.ts): the host has no kprobes and
// refuses fentry, the only hooks on tcp_send_loss_probe. The guests have no
// packet-loss tools, so the receiver drops the sender's data itself: a
// classic BPF socket filter that accepts nothing, attached to the accepted
// socket (tcp_filter() discards each segment before TCP sees it, so nothing
// is ACKed). The sender's last segment then goes unacknowledged: a
// tail-loss probe after about two RTTs, then RTOs until the filter is
// detached. In a network namespace of its own, whose TcpExt TCPLossProbes
// (read by the program before it exits) counts exactly those probes: the
// tlp events in that namespace must equal it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { OWN_NETNS_C, ownNetnsReport } from './own-netns.js';
import { buildC, sleep, startRbtrace, type Finished } from '../helpers.js';

const TLPGEN = buildC(String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/filter.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
${OWN_NETNS_C}
/* tlpgen ROUNDS: in a new network namespace (lo up), one connection; each
 * round the receiver drops everything for 700 ms while the sender writes 100
 * bytes; prints "netns INODE", "port P" and /proc/self/net/netstat's TcpExt lines. */
int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 3;
  if (own_netns_lo_up()) return 1;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (bind(l, (void *)&a, len) || listen(l, 4) || getsockname(l, (void *)&a, &len)) { perror("listen"); return 1; }
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (void *)&a, sizeof a)) { perror("connect"); return 1; }
  int s = accept(l, 0, 0);
  struct sock_filter drop[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
  struct sock_fprog prog = { .len = 1, .filter = drop };
  char buf[4096] = {0};
  for (int i = 0; i < rounds; i++) {
    if (setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog)) { perror("attach"); return 1; }
    if (write(c, buf, 100) != 100) { perror("write"); return 1; }
    usleep(700000);
    int zero = 0;
    if (setsockopt(s, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof zero)) { perror("detach"); return 1; }
    for (int got = 0; got < 100;) { int n = read(s, buf, 100 - got); if (n <= 0) { perror("read"); return 1; } got += n; }
  }
  close(c);
  close(s);
  usleep(200000);
  own_netns_report(ntohs(a.sin_port), "/proc/self/net/netstat", "TcpExt:");
  return 0;
}`, 'tlpgen');

interface Ev { type: string; netns: number; lport: number; rport: number }

/** Tail-loss probes seen by tcpretrans -l in the program's namespace = its TCPLossProbes (at least one a round). */
export async function tailLossProbeCheck(o: { env?: NodeJS.ProcessEnv; timeoutMs?: number; rounds?: number }): Promise<Finished> {
  const rounds = o.rounds ?? 3;
  const r = startRbtrace(['tcpretrans', '-l', '--json', '-v'], { env: o.env });
  await r.ready(o.timeoutMs ?? 20000);
  const out = execFileSync(TLPGEN, [String(rounds)], { encoding: 'utf8' });
  await sleep(200);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  const { netns, port, counter } = ownNetnsReport(out, 'TcpExt:');
  const probes = counter('TCPLossProbes');
  assert.ok(probes >= rounds, `the kernel sent a tail-loss probe each round: ${probes}\n${out}`);
  const evs = f.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev).filter((e) => e.netns === netns);
  assert.ok(evs.every((e) => e.lport === port || e.rport === port), f.stdout);
  assert.equal(evs.filter((e) => e.type === 'tlp').length, probes, `tlp events in the namespace vs its TCPLossProbes\n${out}\n${f.stdout}`);
  return f;
}
