// --cgroup DIR, with a real cgroup v2 directory made for the test: two
// copies of the same program make the same calls at the same time, one of
// them moved into the directory first; rbtrace counts exactly the calls of
// that one (syscount: raw_syscalls tracepoints; mallocstat: uprobes on libc).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { RBTRACE, buildC, startRbtrace, runRbtrace, settledLeftovers, sleep, isCI, cgroupV2Mount } from '../helpers.js';

// Waits for a byte on stdin, then N getppid() (a call neither the loader
// nor libc's start-up makes) and N malloc/free pairs, then exits.
const PROG = buildC(`
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
void *volatile keep;
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  char c;
  if (read(0, &c, 1) != 1) return 1;
  for (int i = 0; i < n; i++) syscall(SYS_getppid);
  for (int i = 0; i < n; i++) { keep = malloc(100 + i); free(keep); }
  return 0;
}
`, 'cgprog');

const MOUNT = cgroupV2Mount();
const DIR = MOUNT ? join(MOUNT, `rbtrace-test-${process.pid}`) : '';
const procs: ChildProcess[] = [];

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  // A killed process leaves the cgroup a moment later: retry for up to 3 s.
  for (let i = 0; DIR && existsSync(DIR) && i < 60; i++) {
    try {
      rmdirSync(DIR);
    } catch {
      await sleep(50);
    }
  }
});

function startPair(n: number): { inside: ChildProcess; outside: ChildProcess; done: Promise<unknown> } {
  const inside = spawn(PROG, [String(n)], { stdio: ['pipe', 'ignore', 'inherit'] });
  const outside = spawn(PROG, [String(n)], { stdio: ['pipe', 'ignore', 'inherit'] });
  procs.push(inside, outside);
  writeFileSync(join(DIR, 'cgroup.procs'), String(inside.pid));
  const done = Promise.all([inside, outside].map((p) => new Promise((r) => p.on('exit', r))));
  return { inside, outside, done };
}

const skip = !isCI && !MOUNT && 'no cgroup v2 mounted';

/** rbtrace ARGS attached, then a pair released (one copy inside DIR): rbtrace's NDJSON records once both ended. */
async function traceDuringPair(args: string[], n: number): Promise<{ records: any[]; insidePid: number }> {
  const { inside, outside, done } = startPair(n);
  const r = startRbtrace([...args, '--json', '-v', '--cgroup', DIR]);
  await r.ready();
  inside.stdin!.end('g');
  outside.stdin!.end('g');
  await done;
  await sleep(200);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  return { records: f.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)), insidePid: inside.pid! };
}

test('syscount --cgroup: exactly the getppid calls of the process in the directory', { skip }, async () => {
  mkdirSync(DIR, { recursive: true });
  const N = 3000;
  const perProcess = await traceDuringPair(['syscount', '-P'], N);
  const seen = perProcess.records.flatMap((x) => x.processes ?? []);
  assert.deepEqual([...new Set(seen.map((p: { pid: number }) => p.pid))], [perProcess.insidePid], `only the process in ${DIR}: ${JSON.stringify(seen)}`);
  // Per syscall: getppid counted exactly N times (the outside copy made N more).
  const perCall = await traceDuringPair(['syscount'], N);
  const getppid = perCall.records.flatMap((x) => x.syscalls ?? []).filter((c: { name: string }) => c.name === 'getppid');
  assert.equal(getppid.reduce((a: number, c: { count: number }) => a + c.count, 0), N);
  assert.deepEqual(await settledLeftovers(['tb_enter', 'tb_exit', 'rt_enter', 'rt_exit', 'fe_enter', 'fe_exit']), []);
});

test('mallocstat --cgroup (uprobes): exactly the mallocs of the process in the directory', { skip }, async () => {
  mkdirSync(DIR, { recursive: true });
  const N = 2000;
  const { records } = await traceDuringPair(['mallocstat'], N);
  const recs = records.filter((x) => x.functions);
  const malloc = recs.reduce((a, x) => a + (x.functions.malloc?.count ?? 0), 0);
  const free = recs.reduce((a, x) => a + (x.functions.free?.count ?? 0), 0);
  assert.deepEqual([malloc, free], [N, N], `one process's ${N} malloc/free pairs, not the other's: ${JSON.stringify(recs)}`);
  assert.deepEqual(await settledLeftovers(['ms_malloc', 'ms_free', 'ms_return']), []);
});

test('--cgroup: not a cgroup v2 directory is a one-line usage error', async () => {
  for (const bad of ['/tmp', '/nonexistent-cgroup', '']) {
    const f = await runRbtrace(['syscount', '--cgroup', bad, '-d', '1']);
    assert.equal(f.code, 2, `${bad}: ${f.stderr}`);
    assert.match(f.stderr, /^rbtrace syscount: --cgroup .+\n$/);
  }
});

test('--cgroup without cgroup v2 mounted: a one-line error, not silence', { skip }, async () => {
  // A private mount namespace where the v2 hierarchy is unmounted.
  const f = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const c = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
      `umount -l ${MOUNT} && exec "${process.execPath}" "${RBTRACE}" syscount --cgroup ${MOUNT} -d 1`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('close', (code) => resolve({ code, stderr }));
  });
  assert.match(f.stderr, /^rbtrace syscount: --cgroup needs cgroup v2, and none is mounted \(cgroup layout: \w+\) \(.+\)\n$/);
  assert.equal(f.code, 1);
});

test('synqueue --cgroup: only listeners whose owner is in the directory', { skip }, async () => {
  mkdirSync(DIR, { recursive: true });
  // Two python3 listeners on kernel-chosen ports; the first moved into DIR.
  const py = 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(4)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()';
  const start = async () => {
    const c = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
    procs.push(c);
    const port = await new Promise<number>((resolve) => c.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
    return { c, port };
  };
  const a = await start();
  const b = await start();
  writeFileSync(join(DIR, 'cgroup.procs'), String(a.c.pid));
  const f = await runRbtrace(['synqueue', '--json', '-d', '1.2', '--port', `${a.port},${b.port}`, '--cgroup', DIR]);
  assert.equal(f.code, 0, f.stderr);
  const rows = f.stdout.trim().split('\n').map((l) => JSON.parse(l)).flatMap((r) => r.listeners);
  assert.ok(rows.length > 0, f.stdout);
  assert.deepEqual([...new Set(rows.map((r: { port: number; pid: number }) => `${r.port}/${r.pid}`))], [`${a.port}/${a.c.pid}`]);
  a.c.stdin!.end();
  b.c.stdin!.end();
});
