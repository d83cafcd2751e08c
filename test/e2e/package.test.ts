// The packed package installs with npm and runs with Node and libbpf only:
// no compiler, no bpftool, no TypeScript at run time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runRbtrace } from '../helpers.js';

test('npm pack + npm install -g: an rbtrace on PATH that traces, and runs no build tool', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-pkg-'));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, stdio: 'pipe' });
  const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
  const prefix = join(dir, 'prefix');
  // --prefer-offline: the dependencies are in npm's cache since `npm ci`.
  execFileSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { stdio: 'pipe', timeout: 180000 });
  const installed = join(prefix, 'bin', 'rbtrace');
  // package.json's `man`: every page where man looks (MANPATH is derived from PATH's prefix).
  const pages = readdirSync(join(ROOT, 'man')).sort();
  assert.deepEqual(readdirSync(join(prefix, 'share/man/man8')).sort(), pages);
  assert.match(execFileSync('man', ['-w', 'rbtrace-synqueue'], { encoding: 'utf8', env: { ...process.env, MANPATH: join(prefix, 'share/man') } }), /rbtrace-synqueue\.8/);
  // The exporter's --help names the package's deploy/ directory, which is there.
  const help = execFileSync(installed, ['exporter', '--help'], { encoding: 'utf8' });
  const deploy = /Deployment \(systemd, Kubernetes, Grafana\): (\S+)\/ \(the package ships it\)/.exec(help)?.[1];
  assert.ok(deploy?.startsWith(prefix), `exporter --help names the installed package's deploy/: ${help}`);
  assert.deepEqual(readdirSync(deploy!).sort(), readdirSync(join(ROOT, 'deploy')).sort());
  assert.equal(execFileSync(installed, ['--version'], { encoding: 'utf8' }).trim(), JSON.parse(execFileSync('npm', ['pkg', 'get', 'version'], { cwd: ROOT, encoding: 'utf8' })));

  // The checkout's execsnoop watches the installed one trace a command.
  // The outer report in a file (-o); the inner one, with -- CMD, on the stderr it inherits.
  const outer = join(dir, 'outer.json');
  const r = await runRbtrace(['execsnoop', '--json', '-o', outer, '--', installed, 'execsnoop', '--json', '--', '/bin/true', 'from-installed']);
  assert.equal(r.code, 0, r.stderr);
  const records = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.comm !== undefined && e.args);
  const execs = records(readFileSync(outer, 'utf8'));
  assert.ok(execs.some((e) => e.filename === installed || e.args[1] === installed), 'the installed rbtrace ran');
  assert.ok(execs.some((e) => e.args[0] === '/bin/true' && e.args[1] === 'from-installed'), 'the outer one saw its command');
  assert.deepEqual(records(r.stderr).map((e) => e.args), [['/bin/true', 'from-installed']], 'the installed one traced its command');
  const tools = execs.map((e) => e.comm as string);
  for (const forbidden of ['clang', 'cc', 'gcc', 'bpftool', 'tsc', 'llc']) assert.ok(!tools.includes(forbidden), `ran ${forbidden}`);
});
