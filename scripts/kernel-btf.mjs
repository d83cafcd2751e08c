#!/usr/bin/env node
// The kernel's own BTF (what /sys/kernel/btf/vmlinux serves when it runs),
// read out of a kernel image file, for building on another machine:
//
//   node scripts/kernel-btf.mjs IMAGE RELEASE OUT.btf > OUT.json
//
// The .BTF section is loaded with the kernel, so it sits verbatim inside the
// image: arm64's Image (Debian's signed package ships it uncompressed; the
// unsigned one gzip'd), x86's bzImage (an xz/gzip/zstd-compressed ELF vmlinux
// inside). We find the BTF header (magic 0xeB9F, version 1, 24-byte header)
// in the image or in its decompressed payload and cut the blob out by the
// header's lengths. Prints the fingerprint src/core/bpf/btf.ts compares before it
// uses a minimized BTF: release, GNU build id, BTF size. The build id is the
// kernel's own note (the one just before .BTF: the vDSOs carry notes too,
// earlier in the image).
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const [image, release, out] = process.argv.slice(2);
if (!image || !release || !out) {
  console.error('usage: kernel-btf.mjs IMAGE RELEASE OUT.btf');
  process.exit(2);
}

const BTF_MAGIC = Buffer.from([0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00]);
const NOTE_BUILD_ID = Buffer.from([4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 0x47, 0x4e, 0x55, 0]);

/** The largest BTF blob in buf (the kernel's; modules' are not in the image). */
function findBtf(buf) {
  let best;
  for (let off = buf.indexOf(BTF_MAGIC); off >= 0; off = buf.indexOf(BTF_MAGIC, off + 8)) {
    const typeOff = buf.readUInt32LE(off + 8), typeLen = buf.readUInt32LE(off + 12);
    const strOff = buf.readUInt32LE(off + 16), strLen = buf.readUInt32LE(off + 20);
    const size = 24 + Math.max(typeOff + typeLen, strOff + strLen);
    if (off + size <= buf.length && (!best || size > best.size)) best = { off, size };
  }
  return best;
}

/** The first compressed payload in buf whose contents hold a BTF blob. */
function decompress(buf) {
  const tries = [
    [Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), ['xz', '-dc', '--single-stream']],
    [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), ['zstd', '-dcq']],
    [Buffer.from([0x1f, 0x8b, 0x08]), ['gzip', '-dcq']],
  ];
  for (const [magic, [cmd, ...args]] of tries) {
    for (let off = buf.indexOf(magic); off >= 0; off = buf.indexOf(magic, off + 1)) {
      const r = spawnSync(cmd, args, { input: buf.subarray(off), maxBuffer: 1 << 30 });
      // gzip exits 2 for "trailing garbage ignored": the payload is still whole.
      if (r.stdout && r.stdout.length && findBtf(r.stdout)) return r.stdout;
    }
  }
  return undefined;
}

let buf = readFileSync(image);
let btf = findBtf(buf);
if (!btf) {
  const inner = decompress(buf);
  if (inner) {
    buf = inner;
    btf = findBtf(buf);
  }
}
if (!btf) {
  console.error(`kernel-btf: no BTF found in ${image} (a kernel built without CONFIG_DEBUG_INFO_BTF?)`);
  process.exit(1);
}
let buildId = '';
for (let off = buf.indexOf(NOTE_BUILD_ID); off >= 0 && off < btf.off; off = buf.indexOf(NOTE_BUILD_ID, off + 4)) {
  buildId = buf.toString('hex', off + 16, off + 36);
}
writeFileSync(out, buf.subarray(btf.off, btf.off + btf.size));
console.log(JSON.stringify({ release, buildId, btfSize: btf.size }));
