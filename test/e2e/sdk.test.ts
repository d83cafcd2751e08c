// The SDK on a real BPF object built by the test: .rodata filters, typed
// hash maps (lookup, update, delete, iterate, batch drain), per-CPU sums,
// ring buffer delivery and loss accounting, and release on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BpfObject } from '../../src/core/bpf/object.js';
import { RingBuffer, lostEvents } from '../../src/core/bpf/ringbuf.js';
import { scalarLayout } from '../../src/core/bpf/layout.js';
import { syscallNumber } from '../../src/core/linux/names.js';
import { ROOT, settledLeftovers } from '../helpers.js';

function buildTestObject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-sdk-'));
  const arch = process.arch === 'arm64' ? 'arm64' : 'x86';
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-D__TARGET_ARCH_${arch}`, '-I', join(ROOT, 'build'), '-I', join(ROOT, 'src/bpf/include'),
    '-c', join(ROOT, 'test/bpf/sdk.bpf.c'), '-o', join(dir, 'sdk.tmp.o')], { stdio: 'pipe' });
  execFileSync('bpftool', ['gen', 'object', join(dir, 'sdk.bpf.o'), join(dir, 'sdk.tmp.o')], { stdio: 'pipe' });
  return join(dir, 'sdk.bpf.o');
}

// .rodata offsets as gen-bindings would derive them (bpftool's BTF dump of the object).
function rodataSpec(obj: string): Record<string, { offset: number; size: number; kind: string }> {
  const btf = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', obj], { encoding: 'utf8', maxBuffer: 1 << 26 }));
  const byId = new Map(btf.types.map((t: { id: number }) => [t.id, t]));
  const sec = btf.types.find((t: { kind: string; name: string }) => t.kind === 'DATASEC' && t.name === '.rodata');
  const spec: Record<string, { offset: number; size: number; kind: string }> = {};
  for (const v of sec.vars) spec[(byId.get(v.type_id) as { name: string }).name] = { offset: v.offset, size: v.size, kind: v.size === 8 ? 's64' : 'u32' };
  return spec;
}

test('maps, per-CPU sums, ring buffer and losses on a real program', async () => {
  const path = buildTestObject();
  const obj = BpfObject.open(path);
  const N = 1000;
  try {
    obj.setRodata(rodataSpec(path), { targ_pid: process.pid, targ_nr: syscallNumber('getppid') });
    obj.selectPrograms(['count_getppid']);
    obj.load();
    const received: number[] = [];
    const rb = new RingBuffer(obj.map('seqs'), (rec) => received.push(Number(rec.getBigUint64(0, true))));
    obj.program('count_getppid').attach();

    // N getppid() calls with nobody reading the 4 KiB ring: most records are lost, and counted.
    for (let i = 0; i < N; i++) void process.ppid;
    rb.consume();
    const lost = lostEvents(obj.map('rbtrace_lost'));
    assert.ok(lost > 0, 'a 4 KiB ring cannot hold 1000 records');
    assert.equal(received.length + lost, N, `received ${received.length} + lost ${lost}`);
    assert.deepEqual(received, Array.from({ length: received.length }, (_, i) => i), 'in order, from the first');

    const u32 = scalarLayout('u32');
    const u64 = scalarLayout('u64');
    const total = obj.map('total').typed(u32, u64);
    assert.equal(obj.map('total').perCpu, true);
    assert.equal(total.lookup({ value: 0 })!.value, N, 'per-CPU values summed');

    const byMod = obj.map('by_mod').typed(u32, u64);
    const entries = byMod.entries().sort((a, b) => a[0].value - b[0].value);
    assert.deepEqual(entries.map(([k]) => k.value), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(entries.reduce((s, [, v]) => s + v.value, 0), N);
    assert.equal(byMod.lookup({ value: 0 })!.value, Math.ceil(N / 7));
    assert.equal(byMod.lookup({ value: 42 }), undefined);

    byMod.update({ value: 42 }, { value: 2 ** 40 });
    assert.equal(byMod.lookup({ value: 42 })!.value, 2 ** 40);
    assert.equal(byMod.delete({ value: 42 }), true);
    assert.equal(byMod.delete({ value: 42 }), false);

    const drained = byMod.drain();
    assert.equal(drained.reduce((s, [, v]) => s + v.value, 0), N);
    assert.deepEqual(byMod.keys(), [], 'drain empties the map');
    rb.close();
  } finally {
    obj.close();
  }
  assert.deepEqual(await settledLeftovers(['count_getppid']), [], 'close releases the program');
});
