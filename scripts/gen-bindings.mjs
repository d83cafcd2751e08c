#!/usr/bin/env node
// The typed skeleton of a BPF object (programs, maps, .rodata, struct
// layouts, enums, macros), as cilium/ebpf's bpf2go does: see
// src/core/skeleton/gen.ts, which does the work (and which `rbtrace build`
// also uses for users' tools).
//
//   node scripts/gen-bindings.mjs build/bpf/execsnoop.bpf.o src/bpf/execsnoop.h src/generated/execsnoop.ts
//   node scripts/gen-bindings.mjs OBJ - OUT.ts --sdk rbtrace     (a tool outside this repository)
//
// This runs before tsc (build-bpf.sh), so the generator is transpiled here
// with esbuild, into build/tmp/.
import { writeFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const args = process.argv.slice(2);
let sdkModule;
const sdkAt = args.indexOf('--sdk');
if (sdkAt >= 0) [, sdkModule] = args.splice(sdkAt, 2);
const [objPath, headerPath, outPath] = args;
if (!objPath || !outPath) {
  console.error('usage: gen-bindings.mjs OBJ.bpf.o [HEADER.h|-] OUT.ts [--sdk MODULE]');
  process.exit(2);
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'src/core/skeleton/gen.ts');
const bundled = join(root, 'build/tmp/skeleton-gen.mjs');
const mtime = (p) => { try { return statSync(p).mtimeMs; } catch { return 0; } };
if (mtime(bundled) < Math.max(mtime(entry), mtime(join(root, 'src/core/elf/elf.ts')))) {
  mkdirSync(dirname(bundled), { recursive: true });
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: bundled, logLevel: 'error',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" } });
}
const { generateSkeleton } = await import(pathToFileURL(bundled).href);

const arch = { x64: 'x86', arm64: 'arm64', s390x: 's390', riscv64: 'riscv' }[process.arch] ?? process.arch;
const header = headerPath && headerPath !== '-' ? headerPath : undefined;
const text = generateSkeleton(objPath, {
  header,
  sdkModule,
  cflags: ['-I', join(root, 'build'), '-I', join(root, 'src/bpf/include'), '-I', join(root, 'src/bpf'), `-D__TARGET_ARCH_${arch}`],
});
mkdirSync(dirname(outPath), { recursive: true });
writeFileSync(outPath, text);
const count = (re) => (text.match(re) ?? []).length;
console.error(`gen-bindings: ${basename(objPath).replace(/\.bpf\.o$/, '')}: ${count(/_layout = new StructLayout/g)} struct(s), ` +
  `${count(/^ {4}\w+: \{ section:/gm)} program(s), ${count(/^ {4}\w+: \{ type:/gm)} map(s)`);
