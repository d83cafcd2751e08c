// The kernel matrix (issue 7, test/vm): execsnoop's and synqueue's end-to-end
// tests on Debian's stock 6.1 kernel under qemu (TCG), with the attach path
// forced to fentry, kprobe and tracepoint in turn, and `rbtrace doctor` in the
// guest (fentry and kprobe must be available there). This machine's kernel
// has neither kprobes nor fentry, so this is where those paths really run.
// About 15 minutes. Part of `npm test` and so of CI; outside CI a developer
// may set RBTRACE_SKIP_VM=1 to leave it out (under CI=true it always runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

const skip = process.env.RBTRACE_SKIP_VM === '1' && process.env.CI !== 'true' ? 'RBTRACE_SKIP_VM=1 (never under CI=true)' : false;

test('kernel matrix on 6.1: execsnoop and synqueue on fentry, kprobe and tracepoint; doctor sees fentry and kprobe', { skip }, async (t) => {
  const child = spawn('bash', [join(ROOT, 'test/vm/ci.sh')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

  const doctor = out.match(/doctor: (.*)/)?.[1] ?? '';
  await t.test('doctor in the guest: fentry and kprobe available', () => {
    assert.match(doctor, /fentry yes/, out.slice(-4000));
    assert.match(doctor, /kprobe yes/, out.slice(-4000));
  });
  for (const path of ['fentry', 'kprobe', 'tracepoint']) {
    await t.test(`${path}: every test passes`, () => {
      const m = out.match(new RegExp(`^\\s+${path}\\s+(\\d+) passed,\\s+(\\d+) failed`, 'm'));
      assert.ok(m, `no result line for ${path}:\n${out.slice(-4000)}`);
      assert.ok(Number(m[1]) > 0, `${path}: nothing ran`);
      assert.equal(Number(m[2]), 0, `${path}: failures:\n${out.slice(-6000)}`);
    });
  }
  assert.equal(code, 0, out.slice(-6000));
});
