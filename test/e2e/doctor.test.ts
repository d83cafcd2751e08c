// rbtrace doctor: every attach kind really tried, every tool's path reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { RBTRACE, runRbtrace } from '../helpers.js';
import { TOOLS } from '../../src/tools/registry.js';

test('doctor --json: kernel facts, attach kinds, and a working path for every tool', async () => {
  const r = await runRbtrace(['doctor', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  assert.match(d.kernel, /^\d+\.\d+/);
  assert.match(d.libbpf, /^v1\./);
  assert.equal(d.privileges.sufficient, true);
  const attach = Object.fromEntries(d.attach.map((f: { name: string; available: boolean }) => [f.name, f.available]));
  // What this project's kernels are known to offer; the kernel matrix (test/vm) checks fentry and kprobe.
  for (const kind of ['tracepoint', 'raw_tp', 'tp_btf', 'uprobe', 'usdt', 'iter']) assert.equal(attach[kind], true, kind);
  assert.deepEqual(Object.keys(attach).sort(), ['fentry', 'iter', 'kprobe', 'raw_tp', 'tp_btf', 'tracepoint', 'uprobe', 'usdt']);
  const tools = d.tools.map((t: { name: string }) => t.name).sort();
  // Every tool that traces (not doctor itself, nor diff, which reads files).
  const tracing = (await Promise.all(TOOLS.map(async (t) => ((await t.load()).traces === false ? [] : [t.name])))).flat();
  assert.deepEqual(tools, tracing.sort());
  for (const t of d.tools) assert.equal(t.available, true, `${t.name}: ${t.detail}`);
  // MIN KERNEL: every tool says the oldest kernel of its best path ("5.10 ...", "6.9 ...").
  for (const t of d.tools) assert.match(t.min_kernel?.best ?? '', /^\d+\.\d+ \S/, t.name);
  const table = await runRbtrace(['doctor'], { env: { COLUMNS: '400' } });
  assert.match(table.stdout, /MIN KERNEL: BEST \/ FALLBACK/);
  assert.match(table.stdout, /^syscount .* 6\.9 fentry .* \/ 5\.10 tp_btf/m);
  // Off a terminal, 80 columns: long reasons wrap inside their cells.
  const narrow = await runRbtrace(['doctor'], { env: { COLUMNS: '' } });
  const toolTable = narrow.stdout.slice(narrow.stdout.indexOf('TOOL  '));
  for (const line of toolTable.split('\n')) assert.ok(line.length <= 80, `${line.length} columns: ${line}`);
  assert.match(toolTable, /^syscount\s+yes\s+\S/m);
  // Nothing doctor tried stays loaded.
  assert.doesNotMatch(execFileSync('bpftool', ['prog', 'list'], { encoding: 'utf8' }), /probe_(fentry|kprobe|tracepoint|raw_tp|tp_btf|uprobe|iter)/);
});

test('doctor without privileges says what it could not probe, and why', () => {
  const user = 'rbtrace-test';
  if (spawnSync('id', ['-u', user]).status !== 0) execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', user]);
  const r = spawnSync('runuser', ['-u', user, '--', process.execPath, RBTRACE, 'doctor'], { encoding: 'utf8', cwd: '/', env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /privileges\s+not root/);
  assert.match(r.stdout, /not probed: loading BPF needs root, or CAP_BPF and CAP_PERFMON \(run with sudo\)/);
});
