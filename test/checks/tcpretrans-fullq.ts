// One exact tcpretrans check, shared by the host's refusal test
// (test/e2e/degrade.test.ts) and the kernel matrix (test/vm/guest/tcp.check.ts).
// Retransmits without packet-loss tools (the matrix's guests have no veth
// or nf_tables modules): a program in a network namespace of its own, with a
// backlog-1 listener that never accepts and 6 connections to it. Those that
// find the accept queue full have their SYN dropped and retransmit it after
// 1 s; the listener retransmits SYN-ACKs whose final ACK it dropped. The
// namespace is new, so its Tcp RetransSegs (read by the program from
// /proc/self/net/snmp before it exits) counts exactly those: the sum of the
// events' segments in that namespace must equal it.
//
// Twice in CI (2 of about 150 runs) one whole timer round of SYNs was
// missing: 4 seen, RetransSegs 8. On the classic tracepoint path that is the
// kernel's bpf_prog_active guard, reported as skipped runs and allowed for
// below. Once on tp_btf no skipped run was reported and the cause is not
// known, so a short run is first told apart: if the program's own
// per-namespace count (-v) is above the records printed, rbtrace lost
// records (its bug: fail); if the program ran as often as it printed, the
// kernel did not run it for a round without counting a miss, and the check
// runs once more in a new namespace, said in the TAP, and must be exact.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { OWN_NETNS_C, ownNetnsReport } from './own-netns.js';
import { buildC, sleep, startRbtrace, type Finished } from '../helpers.js';

export const FULLQ = buildC(String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
${OWN_NETNS_C}
/* fullq: in a new network namespace (lo up), backlog-1 listener, 6
 * connects, 2.5 s; prints "netns INODE" and /proc/self/net/snmp's Tcp lines. */
int main(void) {
  if (own_netns_lo_up()) return 1;
  struct timespec now;
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (bind(l, (void *)&a, len) || listen(l, 1) || getsockname(l, (void *)&a, &len)) { perror("listen"); return 1; }
  for (int i = 0; i < 6; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(c, F_SETFL, O_NONBLOCK);
    if (connect(c, (void *)&a, sizeof a) && errno != EINPROGRESS) { perror("connect"); return 1; }
  }
  clock_gettime(CLOCK_REALTIME, &now);
  printf("connected_ms %lld\n", (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
  usleep(2500000);
  own_netns_report(ntohs(a.sin_port), "/proc/self/net/snmp", "Tcp:");
  return 0;
}`, 'fullq');

interface Ev { time: string; type: string; state: string; segs: number; lport: number; rport: number; netns: number }

/** The total of the last `missed_runs` record (--json): runs the kernel skipped. */
export function missedRuns(stdout: string): number {
  const records = stdout.split('\n').filter((l) => l.startsWith('{"time"') && l.includes('"missed_runs"'));
  return records.length ? (JSON.parse(records[records.length - 1]) as { missed_runs: number }).missed_runs : 0;
}

export interface FullQueueCheck { path: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; extra?: string[]; diagnostic?: (line: string) => void }

/** One run: the tool's figures against the namespace's, and what a short run was short of. */
async function fullQueueRun(o: FullQueueCheck) {
  const r = startRbtrace(['tcpretrans', '--json', '-v', '--attach', o.path, ...(o.extra ?? [])], { env: o.env });
  await r.ready(o.timeoutMs ?? 20000);
  assert.match(r.stderr, new RegExp(`attach path: ${o.path}\\b`));
  const out = execFileSync(FULLQ, { encoding: 'utf8' });
  await sleep(200);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  const { netns, port, counter } = ownNetnsReport(out, 'Tcp:');
  const retransSegs = counter('RetransSegs');
  const evs = f.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Ev).filter((e) => e.netns === netns);
  assert.ok(evs.some((e) => e.type === 'retrans' && e.state === 'SYN_SENT' && e.rport === port), `SYNs retransmitted:\n${f.stdout}`);
  assert.ok(evs.every((e) => e.lport === port || e.rport === port), f.stdout);
  // Runs the kernel skipped (another BPF program or a map syscall held the
  // CPU when the retransmit timer fired: rare, and counted since 6.7) are
  // what the tool reports missing; they are system-wide, so the namespace's
  // shortfall is at most that many. Each skipped run here is one SYN or
  // SYN-ACK: one segment.
  const missed = missedRuns(f.stdout);
  const seen = evs.reduce((n, e) => n + e.segs, 0);
  // The program's own counts for the namespace (its -v line at the end):
  // how many events it ran for, each of which should be a record printed.
  const ran = /^rbtrace tcpretrans: netns (\d+): (\d+) retransmits \(\d+ segments\), (\d+) SYN-ACKs, (\d+) failed, (\d+) tail-loss probes$/gm;
  let counted = 0;
  for (const m of f.stderr.matchAll(ran)) if (Number(m[1]) === netns) counted += m.slice(2, 6).reduce((n, x) => n + Number(x), 0);
  const printed = evs.length;
  // Which timer rounds the records came from (SYNs go again 1 s apart under tcp_syn_linear_timeouts).
  const connected = Number(/^connected_ms (\d+)/m.exec(out)?.[1]);
  const rounds = evs.map((e) => ((Date.parse(e.time) - connected) / 1000).toFixed(2)).join(' ');
  const facts = `tcpretrans ${seen} segments in ${printed} records (the program ran for ${counted} events) + ${missed} skipped runs, RetransSegs ${retransSegs}; records at +${rounds} s from connect`;
  const detail = `${facts}\n${out}\n${f.stdout}\n${f.stderr}`;
  return { f, seen, printed, counted, missed, retransSegs, facts, detail };
}

export async function fullQueueRetransCheck(o: FullQueueCheck): Promise<Finished> {
  let run = await fullQueueRun(o);
  assert.equal(run.printed, run.counted, `rbtrace printed other than its program counted (records lost in user space)\n${run.detail}`);
  if (run.missed === 0 && run.seen < run.retransSegs) {
    (o.diagnostic ?? ((l: string) => process.stderr.write(`# ${l}\n`)))(`tcpretrans [${o.path}] short with no skipped run reported (${run.facts}); run once more`);
    run = await fullQueueRun(o);
    assert.equal(run.printed, run.counted, `rbtrace printed other than its program counted (records lost in user space)\n${run.detail}`);
  }
  const { seen, missed, retransSegs, detail } = run;
  if (missed === 0) assert.equal(seen, retransSegs, `segments in the namespace: tcpretrans vs its RetransSegs\n${detail}`);
  else assert.ok(seen <= retransSegs && retransSegs - seen <= missed, `segments in the namespace: short by more than the runs the tool says the kernel skipped\n${detail}`);
  return run.f;
}
