// runqlat end to end: four CPU-bound perl loops pinned to one CPU wait for
// it in turn; their run-queue time is checked against the kernel's own
// schedstat accounting (/proc/PID/schedstat: run time, run-queue wait, and
// times run) over the same window.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupV2Mount, isCI, runRbtrace, settledLeftovers, sleep, startRbtrace } from '../helpers.js';

const OUR_PROGRAMS = ['tb_wakeup', 'tb_wakeup_new', 'tb_switch', 'rt_wakeup', 'rt_wakeup_new', 'rt_switch'];

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** N busy loops sharing CPU 0. */
async function spinners(n: number): Promise<number[]> {
  const pids: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = spawn('taskset', ['-c', '0', 'perl', '-e', '1 while 1'], { stdio: 'ignore' });
    children.push(c);
    pids.push(c.pid!);
  }
  await sleep(200); // taskset has exec'd perl
  signalAll(pids, 'SIGSTOP');
  await sleep(100);
  return pids;
}

function stop(pids: number[]): void {
  for (const c of children) if (pids.includes(c.pid!)) c.kill('SIGKILL');
}

/** /proc/PID/schedstat: ns on CPU, ns waiting on a run queue, times run (Documentation/scheduler/sched-stats.rst). */
function schedstat(pid: number): { waitNs: number; runs: number } {
  const [, wait, runs] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
  return { waitNs: wait, runs };
}

interface Row { pid?: number; comm?: string; cgroup?: string; count: number; total_ns: number; max_ns: number; hist: { count: number }[] }

/** Stop or continue the loops: stopped, none waits, so schedstat read then is at a clean edge. */
function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) process.kill(pid, sig);
}

/**
 * Tolerance: both sides count the same waits (enqueue at wakeup or
 * preemption, end at switch-in) and the window's edges are clean (the loops
 * are stopped when schedstat is read, and while rbtrace attaches and
 * detaches), so counts are equal: exactly, per process, in every run here;
 * the cgroup's (two processes) once came out one short of schedstat's in 74
 * (a cause not found yet), hence 1 wait of slack per process. Times differ
 * because schedstat reads the run queue's clock, updated at the start of a
 * wakeup or of __schedule, and rbtrace ktime at the tracepoint a little
 * later: measured 1.5 us a wait here, allowed 10 us a wait, plus one wait's
 * worth (max_ns) per process for the slack in counts.
 * One more allowance, per process: a wakeup that preempts the running task
 * tells the next __schedule not to update the clock (wakeup_preempt's
 * rq_clock_skip_update), and under PREEMPT_NONE (this kernel) that switch
 * waits until the kernel code then running on the CPU ends. schedstat's end
 * of the wait switched in then is early by that delay; CI saw it once, 1.0 ms
 * over about 750 ms of waits. STALE_CLOCK_NS (one tick at HZ=250) is a
 * chosen bound for it, not a proven one: 0.5 % of a process's waits here.
 */
const STALE_CLOCK_NS = 4_000_000;
function assertMatches(procs: number, ours: { count: number; total_ns: number; max_ns: number }, before: { waitNs: number; runs: number }, afterS: { waitNs: number; runs: number }, what: string): void {
  const wait = afterS.waitNs - before.waitNs;
  const runs = afterS.runs - before.runs;
  assert.ok(Math.abs(ours.count - runs) <= procs, `${what}: ${ours.count} waits vs schedstat ${runs} runs`);
  const allowed = 10_000 * runs + procs * STALE_CLOCK_NS + Math.abs(ours.count - runs) * ours.max_ns;
  assert.ok(Math.abs(ours.total_ns - wait) <= allowed, `${what}: ${ours.total_ns} ns vs schedstat ${wait} ns (allowed ${allowed}, ${runs} runs)`);
  assert.ok(wait > 200e6, `${what}: 4 loops on one CPU for 1 s wait most of it (${wait} ns)`);
}

/** runqlat with ARGS while the (stopped) loops run for 1 s: its last record and schedstat at both edges. */
async function window<R>(pids: number[], args: string[]): Promise<{ rec: R; before: ReturnType<typeof schedstat>[]; afterS: ReturnType<typeof schedstat>[] }> {
  const r = startRbtrace(['runqlat', '-v', '--json', ...args]);
  await r.ready();
  const before = pids.map(schedstat);
  signalAll(pids, 'SIGCONT');
  await sleep(1000);
  signalAll(pids, 'SIGSTOP');
  await sleep(100);
  const afterS = pids.map(schedstat);
  r.signal('SIGINT');
  const f = await r.finished;
  stop(pids);
  assert.equal(f.code, 0, f.stderr);
  return { rec: JSON.parse(f.stdout.trim().split('\n').at(-1)!) as R, before, afterS };
}

for (const path of ['tp_btf', 'raw_tp']) {
  test(`-P: each busy loop's run-queue time equals its schedstat wait (${path}); --max names them`, async () => {
    const pids = await spinners(4);
    const { rec, before, afterS } = await window<{ hists: Row[]; worst: { pid: number; comm: string; prev_comm: string; wait_ns: number }[] }>(pids, ['-P', '--max', '5', '--attach', path]);
    pids.forEach((pid, i) => {
      const row = rec.hists.find((h) => h.pid === pid);
      assert.ok(row, `pid ${pid} has a histogram`);
      assert.equal(row.comm, 'perl');
      assert.equal(row.hist.reduce((a, b) => a + b.count, 0), row.count);
      assertMatches(1, row, before[i], afterS[i], `pid ${pid}`);
    });
    // The worst waits on a machine where four loops share a CPU are theirs.
    assert.equal(rec.worst.length, 5);
    assert.ok(rec.worst.some((w) => pids.includes(w.pid) && w.comm === 'perl'), JSON.stringify(rec.worst));
    for (let i = 1; i < rec.worst.length; i++) assert.ok(rec.worst[i - 1].wait_ns >= rec.worst[i].wait_ns);
    assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
  });
}

test('--cgroup DIR --per-cgroup: one histogram, the cgroup\'s, equal to the sum of its tasks\' schedstat waits', async (t) => {
  const mount = cgroupV2Mount();
  if (!mount) {
    if (isCI) assert.fail('no cgroup v2 mount');
    t.skip('no cgroup v2 mount');
    return;
  }
  const dir = join(mount, `rbtrace-runqlat-${process.pid}`);
  mkdirSync(dir);
  try {
    const pids = await spinners(4);
    // Two in the cgroup, two outside it competing for the same CPU.
    for (const pid of pids.slice(0, 2)) writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
    const { rec, before, afterS } = await window<{ hists: Row[] }>(pids, ['--cgroup', dir, '--per-cgroup']);
    assert.equal(rec.hists.length, 1, JSON.stringify(rec.hists));
    const row = rec.hists[0];
    assert.equal(row.cgroup, `/rbtrace-runqlat-${process.pid}`);
    const sum = (xs: { waitNs: number; runs: number }[]) => ({ waitNs: xs.reduce((a, x) => a + x.waitNs, 0), runs: xs.reduce((a, x) => a + x.runs, 0) });
    assertMatches(2, row, sum(before.slice(0, 2)), sum(afterS.slice(0, 2)), 'cgroup');
  } finally {
    for (let i = 0; i < 50; i++) {
      try {
        rmdirSync(dir);
        break;
      } catch {
        await sleep(50);
      }
    }
  }
});

test('usage errors: one line, exit 2', async () => {
  for (const [args, msg] of [
    [['-P', '-L'], /-P and -L cannot be used together/],
    [['--max', '0'], /--max/],
  ] as const) {
    const f = await runRbtrace(['runqlat', ...args]);
    assert.equal(f.code, 2, f.stderr);
    assert.match(f.stderr, msg);
    assert.equal(f.stderr.trim().split('\n').length, 1, f.stderr);
  }
});
