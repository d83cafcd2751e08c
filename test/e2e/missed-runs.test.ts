// Runs the kernel skips are reported, not hidden. A classic tracepoint or
// kprobe program is skipped when its CPU is already in BPF: in another
// program, or in a map syscall copying a value (bpf_disable_instrumentation).
// Events that fire in interrupts (a retransmit timer, a disk completion, a
// wakeup) can land in such a window. Found in CI: tcpretrans on the classic
// tracepoint path, short by one timer's worth of SYN retransmits.
//
// Here two processes, one per CPU, read a per-CPU map with large values in a
// loop, while ten network namespaces at a time each retransmit SYNs (the
// program of test/checks/tcpretrans-fullq.ts), in rounds until the kernel has
// skipped some runs (at most five rounds). Oracles: each namespace's
// RetransSegs (its own /proc/net/snmp), and bpftool's recursion_misses for
// the programs this run loaded (by id).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { release } from 'node:os';
import { promisify } from 'node:util';
import { FULLQ, missedRuns } from '../checks/tcpretrans-fullq.js';
import { buildC, sleep, startRbtrace } from '../helpers.js';

const HAMMER = buildC(String.raw`
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
/* hammer SECONDS: look up a per-CPU array of 32 KiB values in a loop. */
int main(int argc, char **argv) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_PERCPU_ARRAY; a.key_size = 4; a.value_size = 32768; a.max_entries = 1;
  int fd = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
  if (fd < 0) return 1;
  char *buf = malloc(32768 * 1024);
  unsigned key = 0;
  time_t end = time(0) + atoi(argv[1]);
  while (time(0) < end) {
    memset(&a, 0, sizeof a); a.map_fd = fd; a.key = (unsigned long)&key; a.value = (unsigned long)buf;
    syscall(SYS_bpf, BPF_MAP_LOOKUP_ELEM, &a, sizeof a);
  }
  return 0;
}`, 'hammer');

interface Prog { id: number; name?: string; recursion_misses?: number }
const ourPrograms = (): Prog[] => (JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 1 << 26 })) as Prog[])
  .filter((p) => p.name === 'tp_retrans' || p.name === 'tp_synack');

// The kernel counts skipped runs of classic tracepoints since 6.7 (before,
// it skips them without a trace: nothing to report or check).
const [major, minor] = release().split('.').map(Number);
const counts = major > 6 || (major === 6 && minor >= 7);

test('skipped runs: tcpretrans on the classic tracepoint path says how many; each namespace is short by no more, and bpftool agrees', { timeout: 120000, skip: counts ? false : `kernel ${release()} does not count skipped tracepoint runs (6.7+)` }, async () => {
  const before = new Set(ourPrograms().map((p) => p.id));
  const r = startRbtrace(['tcpretrans', '--json', '-v', '--attach', 'tracepoint']);
  await r.ready();
  const ids = ourPrograms().filter((p) => !before.has(p.id)).map((p) => p.id);
  assert.equal(ids.length, 2, 'this run loaded tp_retrans and tp_synack');
  const hammers = [0, 1].map((cpu) => spawn('taskset', ['-c', String(cpu), HAMMER, '40'], { stdio: 'ignore' }));
  const oracle = new Map<number, number>();
  try {
    for (let round = 0; round < 5; round++) {
      const outs = await Promise.all(Array.from({ length: 10 }, () => promisify(execFile)(FULLQ, { encoding: 'utf8' })));
      for (const { stdout } of outs) {
        const [keys, values] = stdout.split('\n').filter((l) => l.startsWith('Tcp:')).map((l) => l.trim().split(/\s+/));
        // A later round's namespace may reuse a freed one's inode: both sides sum by inode.
        const netns = Number(/^netns (\d+)/m.exec(stdout)![1]);
        oracle.set(netns, (oracle.get(netns) ?? 0) + Number(values[keys.indexOf('RetransSegs')]));
      }
      const kernelMisses = ourPrograms().filter((p) => ids.includes(p.id)).reduce((n, p) => n + (p.recursion_misses ?? 0), 0);
      if (kernelMisses > 0) break;
    }
  } finally {
    for (const h of hammers) h.kill();
  }
  const kernelMisses = ourPrograms().filter((p) => ids.includes(p.id)).reduce((n, p) => n + (p.recursion_misses ?? 0), 0);
  await sleep(200);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  assert.ok(kernelMisses > 0, `in 50 namespaces with both CPUs in map syscalls, the kernel skipped no run (bpftool)\n${f.stderr}`);

  const reported = missedRuns(f.stdout);
  assert.equal(reported, kernelMisses, `skipped runs: rbtrace's missed_runs vs bpftool's recursion_misses\n${f.stderr}`);
  assert.match(f.stderr, new RegExp(`the kernel skipped \\d+ runs? of tp_(retrans|synack).*the total so far is ${kernelMisses}\\b`), f.stderr);

  const seen = new Map<number, number>();
  for (const line of f.stdout.split('\n')) {
    if (!line.startsWith('{') || !line.includes('"segs"')) continue;
    const e = JSON.parse(line) as { netns: number; segs: number };
    seen.set(e.netns, (seen.get(e.netns) ?? 0) + e.segs);
  }
  // Every skipped run here is one SYN: one segment. Skipped runs are
  // system-wide, so the namespaces' shortfall is at most their number.
  let short = 0;
  for (const [netns, segs] of oracle) {
    const got = seen.get(netns) ?? 0;
    assert.ok(got <= segs, `netns ${netns}: tcpretrans ${got} segments, more than its RetransSegs ${segs}`);
    short += segs - got;
  }
  assert.ok(short > 0, `the kernel skipped ${kernelMisses} runs, yet no namespace is short`);
  assert.ok(short <= reported, `namespaces short by ${short} segments, more than the ${reported} skipped runs reported`);
});
