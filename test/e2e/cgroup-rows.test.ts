// Per-process rows carry the cgroup: a real cgroup v2 directory named as
// Docker names a container's (docker-<64 hex>.scope), a process moved into
// it; syscount -P, mallocstat -P and execsnoop give that process's row its
// exact cgroup path and container id. And a directory whose name has
// terminal control bytes: the CGROUP column shows it escaped.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { buildC, startRbtrace, sleep, isCI, cgroupV2Mount } from '../helpers.js';
import { escapeForTerminal } from '../../src/core/output/format.js';

// Waits for a byte on stdin, makes N getppid() and N malloc/free pairs, then
// waits for stdin to close (alive when rbtrace reports).
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
  while (read(0, &c, 1) > 0) {}
  return 0;
}
`, 'cgrows');

const MOUNT = cgroupV2Mount();
const ID = randomBytes(32).toString('hex');
const CTR_REL = `/docker-${ID}.scope`;
const HOSTILE_REL = `/rbtrace-\x1b[31mred\x07-${process.pid}`;
const dirs = MOUNT ? [join(MOUNT, CTR_REL), join(MOUNT, HOSTILE_REL)] : [];
const procs: ChildProcess[] = [];
const skip = !isCI && !MOUNT && 'no cgroup v2 mounted';

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const d of dirs) {
    for (let i = 0; existsSync(d) && i < 60; i++) {
      try {
        rmdirSync(d);
      } catch {
        await sleep(50);
      }
    }
  }
});

/** rbtrace ARGS (with --cgroup REL) attached, PROG moved into REL and released; rbtrace's output, ended while PROG is alive. */
async function traceOne(rel: string, args: string[], n = 500): Promise<{ out: string; pid: number }> {
  mkdirSync(join(MOUNT!, rel), { recursive: true });
  const p = spawn(PROG, [String(n)], { stdio: ['pipe', 'ignore', 'inherit'] });
  procs.push(p);
  writeFileSync(join(MOUNT!, rel, 'cgroup.procs'), String(p.pid));
  const r = startRbtrace([...args, '-v', '--cgroup', join(MOUNT!, rel)]);
  await r.ready();
  p.stdin!.write('g');
  await sleep(700);
  r.signal('SIGINT');
  const f = await r.finished;
  p.stdin!.end();
  assert.equal(f.code, 0, f.stderr);
  return { out: f.stdout, pid: p.pid! };
}

const records = (out: string) => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

test('syscount -P and mallocstat -P: the row of a process in a container cgroup has its path and container id', { skip }, async () => {
  const s = await traceOne(CTR_REL, ['syscount', '-P', '--json']);
  const rows = records(s.out).flatMap((x) => x.processes ?? []);
  const mine = rows.find((r: { pid: number }) => r.pid === s.pid);
  assert.ok(mine, s.out);
  assert.equal(mine.cgroup, CTR_REL);
  assert.equal(mine.container, ID);

  const m = await traceOne(CTR_REL, ['mallocstat', '-P', '--json']);
  const recs = records(m.out).filter((x) => x.pid === m.pid && x.functions);
  assert.ok(recs.length > 0, m.out);
  for (const r of recs) assert.deepEqual([r.cgroup, r.container], [CTR_REL, ID]);
  assert.equal(recs.reduce((a, r) => a + r.functions.malloc.count, 0), 500);

  // The table: a CONTAINER column with the short id (as docker ps shows it).
  const t = await traceOne(CTR_REL, ['syscount', '-P']);
  assert.match(t.out, /CGROUP\s+CONTAINER/);
  assert.match(t.out, new RegExp(`^\\s*${t.pid}\\s+cgrows\\s+${CTR_REL.replace(/\./g, '\\.')}\\s+${ID.slice(0, 12)}\\s`, 'm'));
});

test('execsnoop: a short-lived exec in a container cgroup has its path and id (named from the BPF cgroup id)', { skip }, async () => {
  mkdirSync(join(MOUNT!, CTR_REL), { recursive: true });
  const r = startRbtrace(['execsnoop', '--json', '-v']);
  await r.ready();
  // sh moved into the directory, then it execs true, which ends at once.
  const sh = spawn('sh', ['-c', 'read x; exec /bin/true rbtrace-cgroup-rows'], { stdio: ['pipe', 'ignore', 'inherit'] });
  procs.push(sh);
  writeFileSync(join(MOUNT!, CTR_REL, 'cgroup.procs'), String(sh.pid));
  sh.stdin!.end('go\n');
  await new Promise((res) => sh.on('exit', res));
  await sleep(300);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  // Its two execs: sh itself (before the move: not in the directory), then true.
  const mine = records(f.stdout).filter((x) => x.pid === sh.pid && x.comm === 'true');
  assert.equal(mine.length, 1, f.stdout);
  assert.deepEqual([mine[0].args, mine[0].cgroup, mine[0].container], [['/bin/true', 'rbtrace-cgroup-rows'], CTR_REL, ID]);
  // Others are not in one: their container is null.
  assert.ok(records(f.stdout).filter((x) => x.pid !== sh.pid).every((x) => x.container !== ID));
});

test('syscount -P --cgroup: a cgroup name with control bytes is escaped in the CGROUP column', { skip }, async () => {
  const t = await traceOne(HOSTILE_REL, ['syscount', '-P']);
  assert.ok(!/[\x07\x1b]/.test(t.out), JSON.stringify(t.out));
  assert.ok(t.out.includes(escapeForTerminal(HOSTILE_REL)), JSON.stringify(t.out));
  assert.match(t.out, new RegExp(`^\\s*${t.pid}\\s+cgrows\\s`, 'm'));
});
