// The kernel matrix (issues 7, 13, test/vm): on Debian's stock 5.10, 6.1 and
// 6.12 kernels under qemu (TCG), one boot each: `rbtrace doctor` in the guest
// (fentry and kprobe available, and every tool) and one exact end-to-end
// check per tool x attach path the kernel offers (test/vm/guest/paths.check.ts).
// This machine's kernel has neither kprobes nor fentry, so this is where
// those paths really run. Part of `npm test` and so of CI (durations in
// test/vm/README.md); outside CI a developer may set RBTRACE_SKIP_VM=1 to
// leave it out (under CI=true it always runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

const skip = process.env.RBTRACE_SKIP_VM === '1' && process.env.CI !== 'true' ? 'RBTRACE_SKIP_VM=1 (never under CI=true)' : false;
const KERNELS = ['5.10', '6.1', '6.12'];
// issue 17: the arm64 cell (Debian's 6.1 arm64 kernel, qemu-system-aarch64, an arm64 userland).
const ARM64_KERNELS = ['6.1'];

test(`kernel matrix on ${KERNELS.join(', ')}: doctor sees every tool; each tool's exact check on each attach path`, { skip }, async (t) => {
  const child = spawn('bash', [join(ROOT, 'test/vm/ci.sh')], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RBTRACE_VM_KERNELS: KERNELS.join(','), RBTRACE_VM_KERNELS_ARM64: ARM64_KERNELS.join(',') },
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  // A kernel's failures as its own report gives them (failing checks, and for a
  // test process killed by a signal: the check, kernel log lines, core), not
  // the end of the whole output, where later kernels' reports would push them out.
  const ownReport = (m: RegExpMatchArray) => out.slice(m.index, (m.index ?? 0) + 6000).split(/\n(?=kernel matrix \()/)[0];

  for (const k of KERNELS) {
    await t.test(`${k}: doctor in the guest: fentry, kprobe and every tool available`, () => {
      const doctor = out.match(new RegExp(`doctor \\(${k.replace('.', '\\.')}\\): (.*)`))?.[1] ?? '';
      assert.match(doctor, /fentry yes/, out.slice(-4000));
      assert.match(doctor, /kprobe yes/, out.slice(-4000));
      assert.doesNotMatch(out, new RegExp(`doctor \\(${k.replace('.', '\\.')}\\): FAILED`), out.slice(-4000));
    });
    await t.test(`${k}: every tool x path check passes`, () => {
      const m = out.match(new RegExp(`^\\s+paths-${k.replace('.', '\\.')}\\s+(\\d+) passed,\\s+(\\d+) failed`, 'm'));
      assert.ok(m, `no result line for ${k}:\n${out.slice(-4000)}`);
      assert.ok(Number(m[1]) >= 15, `${k}: only ${m[1]} checks ran`);
      assert.equal(Number(m[2]), 0, `${k}: failures:\n${ownReport(m)}`);
    });
  }
  for (const k of ARM64_KERNELS) {
    const label = `arm64-${k}`.replace(/\./g, '\\.');
    await t.test(`arm64 ${k}: doctor in the guest: kprobe and every tool available`, () => {
      const doctor = out.match(new RegExp(`doctor \\(${label}\\): (.*)`))?.[1] ?? '';
      assert.match(doctor, /kprobe yes/, out.slice(-4000));
      assert.doesNotMatch(out, new RegExp(`doctor \\(${label}\\): FAILED`), out.slice(-4000));
    });
    await t.test(`arm64 ${k}: every tool x path check passes`, () => {
      const m = out.match(new RegExp(`^\\s+paths-${label}\\s+(\\d+) passed,\\s+(\\d+) failed`, 'm'));
      assert.ok(m, `no result line for arm64 ${k}:\n${out.slice(-4000)}`);
      assert.ok(Number(m[1]) >= 15, `arm64 ${k}: only ${m[1]} checks ran`);
      assert.equal(Number(m[2]), 0, `arm64 ${k}: failures:\n${ownReport(m)}`);
    });
  }
  assert.equal(code, 0, out.slice(-6000));
});
