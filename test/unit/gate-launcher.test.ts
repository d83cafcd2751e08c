// The two gates of `-- CMD` (src/core/gate-launcher.ts) run on their own,
// without BPF: perl's passes the environment on exactly and refuses a
// missing or short "go"; bash's (the fallback where perl is missing) is
// exact but for what its comment admits. The oracle: coreutils' env -0,
// started by Node with the same environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { bashLauncher, perlLauncher, type Launcher } from '../../src/core/gate-launcher.js';

const ENV = '/usr/bin/env';

/** Start a gate on fd 3, wait for its "r", send `go` (or close), return what the command printed. */
async function runGate(l: Launcher, go: Buffer | null): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
  const child = spawn(l.argv[0], l.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: l.env });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const sock = child.stdio[3] as unknown as Duplex;
  sock.on('error', () => {});
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const ready = await Promise.race([new Promise<string>((resolve) => sock.once('data', (d: Buffer) => resolve(d.toString()))), closed.then(() => 'exited')]);
  assert.equal(ready, 'r', `the gate says ready: ${stderr}`);
  if (go) sock.write(go);
  sock.end();
  const status = await closed;
  return { status, stdout: Buffer.concat(out), stderr };
}

const oracle = (env: NodeJS.ProcessEnv): Buffer => spawnSync(ENV, ['-0'], { env }).stdout;
const strings = (b: Buffer): string[] => b.toString('latin1').split('\0').slice(0, -1);

const HOSTILE: NodeJS.ProcessEnv = {
  Z_FIRST: '1',
  PERL5OPT: '-Mstrict -e die',
  PERL5LIB: '/nonexistent',
  PERLIO: ':bogus',
  LC_ALL: 'xx_YY.UTF-8',
  A_ESC_NL: '\x1b[31m\nx=y',
  M_EMPTY: '',
  PATH: '/usr/bin:/bin',
};

test('perl gate: the command gets the environment exactly (no SHLVL, PWD, _ added; order kept); perl obeys none of it', async () => {
  const l = perlLauncher(ENV, ['env', '-0'], 3, HOSTILE);
  assert.ok(l, '/usr/bin/perl (perl-base is Essential)');
  assert.deepEqual(l.env, {}, 'perl itself starts with no environment');
  assert.ok(!l.argv.some((a) => a.includes('PERL5OPT')), 'the environment is not in the gate\'s (world-readable) argv');
  const r = await runGate(l, l.go);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.deepEqual(strings(r.stdout), strings(oracle(HOSTILE)));
  assert.ok(r.stdout.equals(oracle(HOSTILE)));
  // An empty environment stays empty.
  const e = perlLauncher(ENV, ['env', '-0'], 3, {})!;
  const re = await runGate(e, e.go);
  assert.equal(re.status, 0, re.stderr);
  assert.equal(re.stdout.length, 0);
});

test('perl gate: no "go" (rbtrace gone) or a short one: exit 126, the command never runs', async () => {
  const l = perlLauncher(ENV, ['env', '-0'], 3, HOSTILE)!;
  for (const go of [null, l.go.subarray(0, l.go.length - 1), Buffer.concat([l.go, Buffer.from('x')]), Buffer.from('go\n')]) {
    const r = await runGate(l, go);
    assert.equal(r.status, 126, `${go?.toString('latin1').slice(0, 20)}: ${r.stderr}`);
    assert.equal(r.stdout.length, 0, 'env did not run');
  }
});

test('bash gate (the fallback): the same set of variables given a SHLVL; without one it adds SHLVL=0 (documented)', async () => {
  const withShlvl = { ...HOSTILE, SHLVL: '2' };
  const l = bashLauncher(ENV, ['env', '-0'], 3, withShlvl);
  const r = await runGate(l, l.go);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(strings(r.stdout).sort(), strings(oracle(withShlvl)).sort());
  const b = bashLauncher(ENV, ['env', '-0'], 3, HOSTILE);
  const rb = await runGate(b, b.go);
  assert.deepEqual(strings(rb.stdout).sort(), [...strings(oracle(HOSTILE)), 'SHLVL=0'].sort());
});
