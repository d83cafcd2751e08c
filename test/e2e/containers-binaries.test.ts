// Binaries inside containers (issue 12, item 2): a process in its own mount
// namespace runs from a private tmpfs (its executable and its libc, or
// libruby, copied there), so the paths in its /proc/PID/maps do not exist on
// the host. rbtrace -p must find and probe the files that process runs.
// Real namespaces (unshare --mount), no mocks; the counts are exact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildC, startRbtrace, sleep, settledLeftovers, type Finished } from '../helpers.js';

const OUR_PROGRAMS = ['ms_malloc', 'ms_free', 'ms_return', 'strlat_entry', 'strlat_return', 'gc_mark_begin', 'gc_mark_end'];
const CALLS = 1000;

// CALLS times malloc + free + work() once a byte arrives on stdin (rbtrace attaches first).
const PROG = `
#include <stdlib.h>
#include <unistd.h>
void *volatile keep;
__attribute__((noinline)) int work(int x) { __asm__ volatile("" ::: "memory"); return x + 1; }
int main(int argc, char **argv) {
  int n = atoi(argv[1]), s = 0;
  char c;
  if (read(0, &c, 1) != 1) return 1;
  for (int i = 0; i < n; i++) { keep = malloc(48); free(keep); s += work(i); }
  return s == 0;
}
`;

let dir: string;
let box: string;
let prog: string;

before(() => {
  dir = mkdtempSync('/tmp/rbtrace-ctr-');
  chmodSync(dir, 0o755);
  box = join(dir, 'box'); // empty on the host; a private tmpfs inside the container
  mkdirSync(box);
  prog = join(dir, 'ctrprog');
  copyFileSync(buildC(PROG, 'ctrprog'), prog);
  chmodSync(prog, 0o755);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `argv` run in a new mount namespace, from a tmpfs mounted over `box`
 * there only, after `setup` (shell) copied its files in. Resolves once the
 * process maps `expect` (a path inside the box).
 */
async function startInBox(setup: string, argv: string[], expect: string): Promise<ChildProcess> {
  const script = `mount -t tmpfs tmpfs ${box} && ${setup} && exec ${argv.join(' ')}`;
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  for (let i = 0; i < 500; i++) {
    try {
      if (readFileSync(`/proc/${child.pid}/maps`, 'utf8').includes(expect)) return child;
    } catch {
      // not there yet
    }
    await sleep(20);
  }
  child.kill('SIGKILL');
  throw new Error(`the boxed process never mapped ${expect}`);
}

/** Trace `pid` with rbtrace ARGS until `child` has run (after its go byte) and exited. */
async function traceBoxed(args: string[], child: ChildProcess): Promise<Finished & { childOut: string }> {
  let childOut = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (childOut += d));
  const gone = new Promise((resolve) => child.on('exit', resolve));
  const r = startRbtrace([...args, '--json', '-v', '-p', String(child.pid)]);
  const watchdog = setTimeout(() => r.signal('SIGKILL'), 60000);
  try {
    await r.ready();
  } finally {
    child.stdin!.end('g');
  }
  await gone;
  await sleep(100);
  r.signal('SIGINT');
  const f = await r.finished;
  clearTimeout(watchdog);
  return { ...f, childOut };
}

const last = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

test('mallocstat -p: a libc that exists only in the process\'s mount namespace, exact counts', async () => {
  const child = await startInBox(`cp ${prog} /lib/x86_64-linux-gnu/libc.so.6 ${box}/`,
    ['env', `LD_LIBRARY_PATH=${box}`, `${box}/ctrprog`, String(CALLS)], `${box}/libc.so.6`);
  assert.equal(existsSync(join(box, 'libc.so.6')), false, 'the box is invisible on the host');
  assert.equal(readlinkSync(`/proc/${child.pid}/exe`), `${box}/ctrprog`);
  const f = await traceBoxed(['mallocstat'], child);
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stderr, new RegExp(`in ${box}/libc\\.so\\.6`), 'probes the boxed libc');
  const rec = last(f.stdout);
  assert.equal(rec.functions.malloc.count, CALLS);
  assert.equal(rec.functions.free.count, CALLS);
  assert.equal(rec.functions.malloc.bytes, CALLS * 48);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('strlat -p --func: a function of an executable that exists only in the container', async () => {
  const child = await startInBox(`cp ${prog} ${box}/`, [`${box}/ctrprog`, String(CALLS)], `${box}/ctrprog`);
  assert.equal(existsSync(join(box, 'ctrprog')), false, 'the box is invisible on the host');
  const f = await traceBoxed(['strlat', '--lib', `${box}/ctrprog`, '--func', 'work'], child);
  assert.equal(f.code, 0, f.stderr);
  const rep = last(f.stdout);
  assert.equal(rep.binary, `${box}/ctrprog`);
  assert.equal(rep.count, CALLS);
  assert.ok(rep.total_ns > 0 && rep.max_ns > 0);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('gcstat -p: USDT probes of a libruby that exists only in the container, marks = GC.count', async () => {
  const libruby = '/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1';
  const script = 'STDIN.read(1); b = GC.count; 20.times { GC.start }; puts GC.count - b';
  const child = await startInBox(`cp ${libruby} ${box}/`,
    ['env', `LD_LIBRARY_PATH=${box}`, 'ruby', '--disable-gems', '-e', `'${script}'`], `${box}/libruby-3.1.so.3.1`);
  assert.equal(existsSync(join(box, 'libruby-3.1.so.3.1')), false, 'the box is invisible on the host');
  const f = await traceBoxed(['gcstat', '-i', '60'], child);
  assert.equal(f.code, 0, f.stderr);
  const gcs = Number(f.childOut.trim());
  assert.ok(gcs >= 20, `GC.count delta ${f.childOut}`);
  const rows = f.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((r) => 'mark' in r && r.pid === child.pid);
  const marks = rows.reduce((a, r) => a + r.mark.count, 0);
  assert.equal(marks, gcs, `marks seen ${marks}, GC.count says ${gcs}`);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});
