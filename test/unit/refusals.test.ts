// The loader's refusal handling without BPF: which program libbpf's log
// names, which refusals last until reboot, and the per-boot memory's file
// rules (a directory of our own, no links followed, other boots ignored).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RefusalMemory, describeRefusal, failedProgramInLog, hookKind, lastsThisBoot, type Refusal } from '../../src/core/bpf/refusals.js';

const EPERM_LOG = [
  "libbpf: prog 'dump_ownerless': BPF program load failed: Operation not permitted",
  "libbpf: prog 'dump_ownerless': -- BEGIN PROG LOAD LOG --",
  'processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
  '-- END PROG LOAD LOG --',
  "libbpf: prog 'dump_ownerless': failed to load: -1",
];
const VERIFIER_LOG = [
  "libbpf: prog 'fe_x': BPF program load failed: Invalid argument",
  "libbpf: prog 'fe_x': -- BEGIN PROG LOAD LOG --",
  'R1 invalid mem access', 'processed 12 insns (limit 1000000)', '-- END PROG LOAD LOG --',
];

test('the refused program is named from libbpf\'s log; its kind from its section', () => {
  assert.equal(failedProgramInLog(EPERM_LOG), 'dump_ownerless');
  assert.equal(failedProgramInLog(['libbpf: failed to load object x.bpf.o']), undefined);
  assert.equal(hookKind('iter/bpf_map_elem'), 'iter/bpf_map_elem');
  assert.equal(hookKind('fentry/tcp_v4_conn_request'), 'fentry');
  const r: Refusal = { program: 'dump_ownerless', kind: 'iter/bpf_map_elem', errno: 1, stage: 'load' };
  assert.equal(describeRefusal(r), 'the kernel refused program dump_ownerless (iter/bpf_map_elem): EPERM');
});

test('only refusals that cannot change before reboot, whatever the options, last', () => {
  const load = (errno: number): Refusal => ({ program: 'p', kind: 'fentry', errno, stage: 'load' });
  assert.equal(lastsThisBoot(load(1), EPERM_LOG), true, 'EPERM before verification: a policy');
  assert.equal(lastsThisBoot(load(22), VERIFIER_LOG), false, 'a verifier rejection may depend on .rodata');
  assert.equal(lastsThisBoot(load(12), EPERM_LOG), false, 'ENOMEM passes');
  assert.equal(lastsThisBoot({ ...load(1), injected: true }, EPERM_LOG), false, 'RBTRACE_REFUSE is never remembered');
  assert.equal(lastsThisBoot({ program: 'k', kind: 'kprobe', errno: 2, stage: 'attach' }), true, 'no such kprobe');
  assert.equal(lastsThisBoot({ program: 'u', kind: 'uprobe', errno: 2, stage: 'attach' }), false, 'a uprobe is about a binary');
});

test('the memory: kept in a 0700 directory of our own, per boot; a link or a foreign file is ignored', () => {
  const base = mkdtempSync(join(tmpdir(), 'rbtrace-refusals-'));
  const saved = process.env.RBTRACE_RUN_DIR;
  try {
    process.env.RBTRACE_RUN_DIR = join(base, 'run');
    const r: Refusal = { program: 'fe_x', kind: 'fentry', errno: 1, stage: 'load' };
    new RefusalMemory('d1').remember(r, EPERM_LOG, '__x64_sys_execve');
    assert.deepEqual(new RefusalMemory('d1').recalled('fe_x', '__x64_sys_execve'), { ...r, remembered: true });
    assert.equal(new RefusalMemory('d1').recalled('fe_x', 'other_target'), undefined, 'keyed by attach target');
    assert.equal(new RefusalMemory('d2').recalled('fe_x', '__x64_sys_execve'), undefined, 'keyed by object digest');
    assert.equal(new RefusalMemory('d1', false).recalled('fe_x', '__x64_sys_execve'), undefined, 'doctor does not recall');
    // Another boot's file says nothing.
    const file = join(base, 'run', 'refusals.json');
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...stored, boot: 'another-boot' }));
    assert.equal(new RefusalMemory('d1').recalled('fe_x', '__x64_sys_execve'), undefined);
    // A directory others can write is not ours to trust.
    new RefusalMemory('d1').remember(r, EPERM_LOG, '__x64_sys_execve');
    chmodSync(join(base, 'run'), 0o777);
    assert.equal(new RefusalMemory('d1').recalled('fe_x', '__x64_sys_execve'), undefined);
    // A planted link in place of the directory is neither followed nor written through.
    mkdirSync(join(base, 'elsewhere'));
    symlinkSync(join(base, 'elsewhere'), join(base, 'link'));
    process.env.RBTRACE_RUN_DIR = join(base, 'link');
    new RefusalMemory('d1').remember(r, EPERM_LOG, '__x64_sys_execve');
    assert.throws(() => readFileSync(join(base, 'elsewhere', 'refusals.json')), /ENOENT/);
  } finally {
    if (saved === undefined) delete process.env.RBTRACE_RUN_DIR;
    else process.env.RBTRACE_RUN_DIR = saved;
  }
});
