// scripts/kernel-btf.mjs (issue 17): the other architecture's kernel BTF is
// cut out of a Debian kernel image. Checked on images built here around a
// real BTF blob (the build's minimized BTF): raw, as in arm64's Image, and
// xz-compressed, as in x86's bzImage; the kernel's build-id note is the one
// just before the BTF, not a vDSO's earlier one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hostArch } from '../../src/core/bpf/arch.js';
import { ROOT } from '../helpers.js';

const BTF = readFileSync(join(ROOT, 'build/bpf', hostArch().bpf, 'vmlinux.min.btf'));

function note(id: Buffer): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32LE(4, 0);
  head.writeUInt32LE(20, 4);
  head.writeUInt32LE(3, 8);
  head.write('GNU\0', 12, 'latin1');
  return Buffer.concat([head, id]);
}

function extract(image: Buffer): { meta: { release: string; buildId: string; btfSize: number }; btf: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-kbtf-'));
  writeFileSync(join(dir, 'vmlinuz'), image);
  const out = execFileSync('node', [join(ROOT, 'scripts/kernel-btf.mjs'), join(dir, 'vmlinuz'), '6.1.0-99-test', join(dir, 'out.btf')], { encoding: 'utf8' });
  return { meta: JSON.parse(out), btf: readFileSync(join(dir, 'out.btf')) };
}

const vdsoId = randomBytes(20);
const kernelId = randomBytes(20);
// vDSO note, filler, the kernel's note, filler, BTF, filler
const inner = Buffer.concat([randomBytes(4096), note(vdsoId), randomBytes(8192), note(kernelId), randomBytes(100), BTF, randomBytes(4096)]);

test('kernel-btf: the BTF blob and the kernel build id from an uncompressed image', () => {
  assert.equal(BTF.readUInt16LE(0), 0xeb9f);
  const { meta, btf } = extract(inner);
  assert.ok(btf.equals(BTF), 'the same bytes as the embedded BTF');
  assert.deepEqual(meta, { release: '6.1.0-99-test', buildId: kernelId.toString('hex'), btfSize: BTF.length });
});

test('kernel-btf: from an xz payload inside an image (x86 bzImage)', () => {
  const xz = execFileSync('xz', ['-c', '-1'], { input: inner });
  const { meta, btf } = extract(Buffer.concat([randomBytes(20000).fill(0x90), xz, Buffer.alloc(512)]));
  assert.ok(btf.equals(BTF));
  assert.equal(meta.buildId, kernelId.toString('hex'));
});

test('kernel-btf: an image without BTF is a one-line error, exit 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-kbtf-'));
  writeFileSync(join(dir, 'vmlinuz'), randomBytes(65536).fill(0));
  try {
    execFileSync('node', [join(ROOT, 'scripts/kernel-btf.mjs'), join(dir, 'vmlinuz'), 'x', join(dir, 'o')], { stdio: 'pipe' });
    assert.fail('no error');
  } catch (err) {
    const e = err as { status: number; stderr: Buffer };
    assert.equal(e.status, 1);
    assert.match(e.stderr.toString(), /^kernel-btf: no BTF found in .*vmlinuz \(a kernel built without CONFIG_DEBUG_INFO_BTF\?\)\n$/);
  }
});

// Setup downloads the other architecture's kernel (93 MB) once per machine:
// a second checkout takes the BTF from the user's cache and downloads nothing.
test('kernel-btf.sh: a BTF in the cache is copied, with no apt state made and nothing downloaded', () => {
  const tree = mkdtempSync(join(tmpdir(), 'rbtrace-kbtf-tree-'));
  const cache = mkdtempSync(join(tmpdir(), 'rbtrace-kbtf-cache-'));
  execFileSync('mkdir', ['-p', join(tree, 'scripts'), join(cache, 'btf')]);
  execFileSync('cp', [join(ROOT, 'scripts/kernel-btf.sh'), join(tree, 'scripts/')]);
  writeFileSync(join(cache, 'btf/arm64.btf'), BTF);
  writeFileSync(join(cache, 'btf/arm64.json'), '{"release":"6.12.99+deb12-arm64"}\n');
  // No scripts/debian-apt.sh in this tree: reaching the download would fail.
  const r = execFileSync('bash', [join(tree, 'scripts/kernel-btf.sh'), 'arm64'], { encoding: 'utf8', env: { ...process.env, RBTRACE_CACHE_DIR: cache, RBTRACE_BTF_KPKG: '' }, stdio: 'pipe' });
  assert.equal(r, '');
  assert.deepEqual(readFileSync(join(tree, 'build/btf/arm64.btf')), BTF);
  assert.equal(readFileSync(join(tree, 'build/btf/arm64.json'), 'utf8'), '{"release":"6.12.99+deb12-arm64"}\n');
  assert.throws(() => readFileSync(join(tree, 'build/debian-arm64')), 'no apt state: nothing was downloaded');
});
