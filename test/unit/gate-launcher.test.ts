// The two gates of `-- CMD` (src/core/linux/gate-launcher.ts) run on their own,
// without BPF: perl's passes the environment on exactly and refuses a
// missing or short "go"; bash's (the fallback where perl is missing) is
// exact but for what its comment admits. The oracle: coreutils' env -0,
// started by Node with the same environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { bashLauncher, environBlock, perlLauncher, type Launcher } from '../../src/core/linux/gate-launcher.js';

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

test('environBlock: this process\'s environment as bytes when process.env is what Node made of it, else process.env as spawn() passes it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-environ-'));
  const file = (name: string, bytes: number[] | string) => {
    const f = join(dir, name);
    writeFileSync(f, typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes));
    return f;
  };
  // B=caf\xe9 (latin1): Node decodes it as 'caf\ufffd'.
  const raw = file('raw', 'B=caf\xe9\0A=1\0EMPTY=\0X==y\0');
  const node = { B: 'caf\ufffd', A: '1', EMPTY: '', X: '=y' };
  assert.deepEqual([...environBlock(node, raw)], [...Buffer.from('B=caf\xe9\0A=1\0EMPTY=\0X==y\0', 'latin1')]);
  const spawned = (env: NodeJS.ProcessEnv) => Buffer.from(Object.entries(env).map(([k, v]) => `${k}=${v}\0`).join(''));
  for (const [what, env, f] of [
    ['a value changed since start-up', { ...node, A: '2' }, raw],
    ['a variable added', { ...node, NEW: '1' }, raw],
    ['a variable removed', { B: node.B, A: '1', EMPTY: '' }, raw],
    ['a name twice in the environment', { A: '2' }, file('dup', 'A=1\0A=2\0')],
    ['a string without =', { A: '1' }, file('noeq', 'A=1\0junk\0')],
    ['no /proc', { A: '1' }, join(dir, 'missing')],
  ] as [string, NodeJS.ProcessEnv, string][]) {
    assert.deepEqual(environBlock(env, f).toString('latin1'), spawned(env).toString('latin1'), what);
  }
  // The real one: this process's environment, unchanged since start-up.
  assert.ok(environBlock(process.env).equals(readFileSync('/proc/self/environ')));
});
