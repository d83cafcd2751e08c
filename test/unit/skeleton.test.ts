// The typed skeleton (src/core/skeleton/gen.ts) on a real object built here
// from test/bpf/skeleton.bpf.c: its programs, maps, .rodata, layouts and
// macros, and the point of it all: TypeScript written against the object
// stops type-checking when a map or a value's field is renamed in the C, or
// a field's type changes.
// Needs clang and bpftool (no root): nothing is loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { evalInteger, generateSkeleton } from '../../src/core/skeleton/gen.js';
import { ROOT } from '../helpers.js';

const arch = process.arch === 'arm64' ? 'arm64' : 'x86';
const SDK = join(ROOT, 'dist/src/core/skeleton/index.js');
const OBJECT = join(ROOT, 'dist/src/core/bpf/object.js');

type Variant = 'same' | 'RENAMED' | 'RENAMED_FIELD' | 'CHANGED_TYPE';

function buildObject(dir: string, variant: Variant): string {
  const tmp = join(dir, 'skeleton.tmp.o');
  const obj = join(dir, 'skeleton.bpf.o');
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-D__TARGET_ARCH_${arch}`, ...(variant === 'same' ? [] : [`-D${variant}`]),
    '-I', join(ROOT, 'build'), '-I', join(ROOT, 'src/bpf/include'), '-I', join(ROOT, 'test/bpf'),
    '-c', join(ROOT, 'test/bpf/skeleton.bpf.c'), '-o', tmp], { stdio: 'pipe' });
  execFileSync('bpftool', ['gen', 'object', obj, tmp], { stdio: 'pipe' });
  return obj;
}

/** A directory holding the generated skeleton and a tool file written against the original object. */
function project(variant: Variant): string {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-skeleton-'));
  const obj = buildObject(dir, variant);
  writeFileSync(join(dir, 'skeleton.ts'), generateSkeleton(obj, { header: join(ROOT, 'test/bpf/skeleton.h'), sdkModule: SDK }));
  writeFileSync(join(dir, 'use.ts'), `import { BpfObject } from ${JSON.stringify(OBJECT)};
import { SKELETON, DEFINES, skel_key_layout, skel_value_layout, type SkelKey } from './skeleton.js';

export function use(): void {
  const obj = BpfObject.open(SKELETON, { path: '/nonexistent.bpf.o' });
  obj.setRodata({ targ_cookie: 2n ** 60n, targ_on: true, targ_comm: 'x' });
  obj.program('skel_enter');
  obj.map('counts').typed(skel_key_layout, skel_value_layout);
  const key: SkelKey = skel_key_layout.decode(new Uint8Array(16));
  const addr: bigint = key.addr;
  const slots: 16 = DEFINES.SKEL_SLOTS;
  void addr; void slots;
}
`);
  // Values typed from the C: the key and value types come with the map's name.
  writeFileSync(join(dir, 'fields.ts'), `import { BpfObject } from ${JSON.stringify(OBJECT)};
import { SKELETON } from './skeleton.js';

export function read(obj: BpfObject<typeof SKELETON>): void {
  const v = obj.typedMap('rbtrace_lost').lookup({ value: 0 });
  const lost: number | undefined = v?.value;
  const counts = obj.typedMap(${JSON.stringify('counts')});
  const row = counts.lookup({ addr: 1n, pid: 2 });
  const count: number | undefined = row?.count;
  const comm: string | undefined = row?.comm;
  void lost; void count; void comm;
}
`);
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true,
      rootDir: '.', outDir: 'out', types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')],
    },
    include: ['*.ts'],
  }));
  return dir;
}

function tsc(dir: string, emit: boolean): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir, ...(emit ? [] : ['--noEmit'])], { encoding: 'utf8' });
  return { status: r.status, output: r.stdout + r.stderr };
}

test('the skeleton of a real object: programs, maps, .rodata, layouts, macros; tool code type-checks against it', async () => {
  const dir = project('same');
  try {
    const r = tsc(dir, true);
    assert.equal(r.status, 0, r.output);
    const skel = await import(pathToFileURL(join(dir, 'out/skeleton.js')).href);
    assert.deepEqual(skel.SKELETON.programs.skel_enter, { section: 'raw_tp/sys_enter', attach: 'raw_tp' });
    assert.deepEqual(Object.keys(skel.SKELETON.programs).sort(), ['rbtrace_exec', 'rbtrace_exit', 'rbtrace_fork', 'skel_enter']);
    const counts = skel.SKELETON.maps.counts;
    assert.equal(counts.type, 'hash');
    assert.equal(counts.maxEntries, 128);
    assert.equal(counts.keySize, 16);
    assert.equal(counts.valueSize, 8 + 16 * 8 + 16);
    assert.equal(counts.key, skel.skel_key_layout);
    assert.equal(counts.value, skel.skel_value_layout);
    assert.equal(skel.SKELETON.maps.rbtrace_lost.type, 'percpu_array');
    assert.deepEqual(skel.RODATA.targ_cookie, { offset: skel.RODATA.targ_cookie.offset, size: 8, kind: 'u64' });
    assert.equal(skel.RODATA.targ_comm.kind, 'char[16]');
    // Macros as the compiler sees them, expressions included; strings left out.
    assert.deepEqual(skel.DEFINES, { SKEL_SLOTS: 16, SKEL_BYTES: 128, SKEL_MASK: 15 });
    assert.deepEqual(skel.ENUMS, { SKEL_ONE: 1, SKEL_TWO: 2 });
    // RBTRACE_BIG: exact past 2^53 as a bigint; untagged u64 stays a number.
    const big = 2n ** 60n + 1n;
    const key = skel.skel_key_layout.decode(skel.skel_key_layout.encode({ addr: big, pid: 7 }));
    assert.equal(key.addr, big);
    assert.equal(key.pid, 7);
    assert.equal(typeof skel.skel_value_layout.decode(new Uint8Array(counts.valueSize)).count, 'number');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a map renamed in the C is a type error in the TypeScript that uses the old name', () => {
  const dir = project('RENAMED');
  try {
    const r = tsc(dir, false);
    assert.notEqual(r.status, 0, 'tsc accepted a map name the object no longer has');
    assert.match(r.output, /use\.ts\(8,\d+\): error TS2345: Argument of type '"counts"' is not assignable to parameter of type 'MapName'/, r.output);
    assert.match(r.output, /fields\.ts\(7,\d+\): error TS2345: Argument of type '"counts"' is not assignable/, r.output);
    // Past the refused name, fields.ts's reads have no value type to check; use.ts has no other error.
    assert.equal(r.output.match(/use\.ts\(\d+,\d+\): error TS/g)?.length, 1, `only the renamed map is an error in use.ts:\n${r.output}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a value's field renamed, or its type changed, in the C is a type error where the TypeScript reads it", () => {
  for (const [variant, line, error] of [
    ['RENAMED_FIELD', 9, /error TS2339: Property 'count' does not exist on type 'SkelValue'/],
    ['CHANGED_TYPE', 10, /error TS2322: Type 'number \| undefined' is not assignable to type 'string \| undefined'/],
  ] as const) {
    const dir = project(variant);
    try {
      const r = tsc(dir, false);
      assert.notEqual(r.status, 0, `${variant}: tsc accepted it`);
      assert.match(r.output, new RegExp(`fields\\.ts\\(${line},\\d+\\): ${error.source}`), `${variant}:\n${r.output}`);
      assert.equal(r.output.match(/error TS/g)?.length, 1, `${variant}: only the changed field is an error:\n${r.output}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('macro values: C integer arithmetic, or nothing', () => {
  assert.equal(evalInteger('(128 * 256)'), 32768);
  assert.equal(evalInteger('((1U << 4) - 1)'), 15);
  assert.equal(evalInteger('7 / 2'), 3, 'integer division');
  assert.equal(evalInteger('0x10 | 010'), 24, 'hex and octal');
  assert.equal(evalInteger('-1'), -1);
  assert.equal(evalInteger('"text"'), undefined);
  assert.equal(evalInteger('foo(1)'), undefined);
  assert.equal(evalInteger('sizeof(int)'), undefined);
  assert.equal(evalInteger('1.5'), undefined);
});
