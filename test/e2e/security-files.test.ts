// Issue 26, findings 2 and 3: files root's rbtrace writes, in directories
// an unprivileged user (rbtrace-test, made if missing) controls. The
// attacker plants symbolic links as that user (setpriv); the victims are
// root-owned files and directories made by the test (never the system's).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRbtrace, sleep, startRbtrace } from '../helpers.js';

const USER = 'rbtrace-test';
function ensureUser(): number {
  if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', USER]);
  return Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }).trim());
}
const uid = ensureUser();
/** A shell command run as the attacker. */
const asAttacker = (script: string) => execFileSync('setpriv', ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', '/bin/sh', '-c', script], { stdio: 'pipe' });

const root = mkdtempSync(join(tmpdir(), 'rbtrace-security-'));
chmodSync(root, 0o755);
after(() => rmSync(root, { recursive: true, force: true }));
/** A directory the attacker owns, in a root-owned one. */
function attackerDir(name: string): string {
  const d = join(root, name);
  mkdirSync(d);
  chownSync(d, uid, uid);
  return d;
}
/** Root's file or directory the attack aims at. */
function victimDir(name: string): string {
  const d = join(root, name);
  mkdirSync(d, { mode: 0o755 });
  return d;
}

test('rbtrace new in a directory of another user: refused (exit 2); with --others-dir, a dangling link planted at NAME.bpf.c is not followed', async () => {
  const dir = attackerDir('new');
  const victims = victimDir('new-victims');
  asAttacker(`ln -s ${victims}/x.conf ${dir}/demo.bpf.c`);
  const r = await runRbtrace(['new', 'demo'], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /will not write in .*belongs to user \d+/);
  const forced = await runRbtrace(['new', 'demo', '--others-dir'], { cwd: dir });
  assert.equal(forced.code, 1, forced.stderr);
  assert.match(forced.stderr, /demo\.bpf\.c exists already/);
  // --force replaces the link itself, never what it points at.
  const force = await runRbtrace(['new', 'demo', '--others-dir', '--force'], { cwd: dir });
  assert.equal(force.code, 0, force.stderr);
  assert.deepEqual(readdirSync(victims), [], 'nothing written through the link');
  assert.match(readFileSync(join(dir, 'demo.bpf.c'), 'utf8'), /SEC\(/);
});

test('rbtrace build: links planted at NAME.bpf.o and NAME.skel.ts are refused, the files they name unchanged; bpftool never writes beside the source', { timeout: 120_000 }, async () => {
  const dir = attackerDir('build');
  const victims = victimDir('build-victims');
  writeFileSync(join(victims, 'victim'), 'root\'s file\n');
  writeFileSync(join(victims, 'victim2'), 'root\'s other file\n');
  const starter = victimDir('starter');
  assert.equal((await runRbtrace(['new', 'demo'], { cwd: starter })).code, 0);
  copyFileSync(join(starter, 'demo.bpf.c'), join(dir, 'demo.bpf.c'));
  chownSync(join(dir, 'demo.bpf.c'), uid, uid);
  asAttacker(`ln -s ${victims}/victim ${dir}/demo.skel.ts && ln -s ${victims}/victim2 ${dir}/demo.bpf.o`);
  const plain = await runRbtrace(['build', 'demo.bpf.c'], { cwd: dir });
  assert.equal(plain.code, 2, plain.stderr);
  assert.match(plain.stderr, /will not write in .*belongs to user/);
  const r = await runRbtrace(['build', 'demo.bpf.c', '--others-dir'], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /will not replace .*demo\.bpf\.o: it is a symbolic link/);
  assert.equal(readFileSync(join(victims, 'victim'), 'utf8'), 'root\'s file\n');
  assert.equal(readFileSync(join(victims, 'victim2'), 'utf8'), 'root\'s other file\n');
  // Without the links, the build works there, and leaves no temporary file.
  asAttacker(`rm ${dir}/demo.skel.ts ${dir}/demo.bpf.o`);
  const ok = await runRbtrace(['build', 'demo.bpf.c', '--others-dir'], { cwd: dir });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(readdirSync(dir).sort(), ['demo.bpf.c', 'demo.bpf.o', 'demo.skel.ts']);
});

test('--save through a directory link another user planted (/tmp/d -> a root directory): refused when parsed (exit 2), and when planted during the run (exit 1); nothing written there', async () => {
  const sticky = join(root, 'sticky');
  mkdirSync(sticky);
  chmodSync(sticky, 0o1777);
  const victims = victimDir('save-victims');
  asAttacker(`ln -s ${victims} ${sticky}/d`);
  const r = await runRbtrace(['syscount', '-d', '0.2', '--save', join(sticky, 'd', 'p.json')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /will not follow .*\/d is a symbolic link of user \d+/);
  // A real directory of the attacker's when parsed, a link by the time it is written.
  asAttacker(`rm ${sticky}/d && mkdir ${sticky}/d`);
  const run = startRbtrace(['syscount', '-d', '1.5', '--save', join(sticky, 'd', 'p.json')]);
  await sleep(700);
  asAttacker(`mv ${sticky}/d ${sticky}/old && ln -s ${victims} ${sticky}/d`);
  const f = await run.finished;
  assert.equal(f.code, 1, f.stderr);
  assert.match(f.stderr, /cannot write .*p\.json: will not follow/);
  assert.deepEqual(readdirSync(victims), []);
  assert.ok(!existsSync(join(sticky, 'old', 'p.json')));
});
