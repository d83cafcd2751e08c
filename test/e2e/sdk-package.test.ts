// The SDK as a user gets it: from a directory outside the checkout, the
// packed tarball installed with npm, then `rbtrace new`, `rbtrace build`,
// `rbtrace run` through npx, and tools written against the installed types
// checked by tsc (one right, one deliberately wrong).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, settledLeftovers } from '../helpers.js';

const NODE_TYPES = JSON.parse(execFileSync('npm', ['pkg', 'get', 'devDependencies'], { cwd: ROOT, encoding: 'utf8' }))['@types/node'];
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

function sh(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  return spawnSync(file, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env }, timeout: 180000 });
}

let project = '';

test('npm pack, npm install into a project: the tarball holds the SDK (types, headers, generator, starter, man pages)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-sdk-pkg-'));
  execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, stdio: 'pipe' });
  const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
  const listing = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
  for (const f of ['package/dist/src/sdk.d.ts', 'package/dist/src/core/tool.d.ts', 'package/dist/bundle/sdk.js',
    'package/src/bpf/include/rbtrace.bpf.h', 'package/src/bpf/include/bits.bpf.h', 'package/scripts/gen-bindings.mjs',
    'package/src/sdkcli/starter/tool.bpf.c.in', 'package/src/sdkcli/starter/tool.ts.in', 'package/man/rbtrace-run.8', 'package/docs/SDK.md']) {
    assert.ok(listing.includes(f), `${f} in the tarball`);
  }
  assert.ok(!listing.some((f) => f.startsWith('package/test/') || f.startsWith('package/dist/test/')), 'no tests shipped');
  project = join(dir, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-tools', version: '1.0.0', type: 'module', private: true }));
  // --prefer-offline: the dependencies are in npm's cache since `npm ci` (the registry is used otherwise).
  const r = sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, `@types/node@${NODE_TYPES}`], project);
  assert.equal(r.status, 0, r.stderr);
  const version = sh(process.execPath, ['--input-type=module', '-e', "import('rbtrace').then((m) => console.log(m.SDK_VERSION, typeof m.defineTool, typeof m.StructLayout))"], project);
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout.trim(), `${JSON.parse(execFileSync('npm', ['pkg', 'get', 'version'], { cwd: ROOT, encoding: 'utf8' }))} function function`);
});

test('npx rbtrace new demo, build demo.bpf.c, run demo.ts --json -- ./prog: 37 getppid calls counted exactly', async () => {
  assert.ok(project, 'the install test ran');
  let r = sh('npx', ['rbtrace', 'new', 'demo'], project);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /wrote demo\.bpf\.c, demo\.ts/);
  r = sh('npx', ['rbtrace', 'new', 'demo'], project);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'rbtrace new: demo.bpf.c exists already (pick another name, or --force to overwrite it)\n');
  r = sh('npx', ['rbtrace', 'build', 'demo.bpf.c'], project);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(project).filter((f) => f.startsWith('demo')).sort(), ['demo.bpf.c', 'demo.bpf.o', 'demo.skel.ts', 'demo.ts']);

  writeFileSync(join(project, 'prog.c'), '#include <unistd.h>\n#include <sys/syscall.h>\nint main(void) { for (int i = 0; i < 37; i++) syscall(SYS_getppid); return 0; }\n');
  execFileSync('cc', ['-O1', '-o', join(project, 'prog'), join(project, 'prog.c')]);
  // -o -: the records on stdout (prog prints nothing), npx's notes on stderr.
  r = sh('npx', ['rbtrace', 'run', 'demo.ts', '--json', '-o', '-', '--', './prog'], project);
  assert.equal(r.status, 0, r.stderr);
  const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(records.find((x) => x.syscall === 'getppid')?.count, 37, r.stdout);
  const procs = records.filter((x) => x.pid !== undefined);
  assert.equal(procs.length, 1, 'only the command is traced');
  assert.equal(procs[0].comm, 'prog');
  // Every syscall of the process is in the per-syscall table, and in its row.
  assert.equal(procs[0].count, records.filter((x) => x.syscall).reduce((a, x) => a + x.count, 0));
  assert.deepEqual(await settledLeftovers(['enter_btf', 'enter_raw']), []);

  // The tool's own option and a usage error, the CLI's way.
  r = sh('npx', ['rbtrace', 'run', 'demo.ts', '-p', 'x'], project);
  assert.equal(r.status, 2);
  assert.equal(r.stderr, "rbtrace demo: -p wants a process id from 1 to 4194304, got 'x' (e.g. -p 1234)\n");
  r = sh('npx', ['rbtrace', 'run', 'missing.ts'], project);
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'rbtrace run: missing.ts: no such file (rbtrace run wants a tool file, e.g. rbtrace run demo.ts (rbtrace new demo writes one))\n');
});

test('tsc: a second tool against the installed types checks, a wrong one fails on the wrong name', () => {
  assert.ok(project, 'the install test ran');
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'] },
    include: ['*.ts'],
  }));
  writeFileSync(join(project, 'top.ts'), `// Another tool on demo's object: the busiest processes only.
import { defineTool, probePaths, scalarLayout, formatCount, integerParser, type AttachPath, type ProcCount } from 'rbtrace';
import { OBJECT_FILE, RODATA, proc_count_layout, type ProcCount as Row } from './demo.skel.js';
const PATHS: AttachPath[] = [{ name: 'raw_tp', programs: ['enter_raw'] }];
export default defineTool<{ limit: number }>({
  name: 'top',
  summary: 'busiest processes',
  options(cmd) { cmd.option('--limit <n>', 'rows', integerParser('--limit', { min: 1, max: 100 }), 5); },
  probe: () => probePaths(OBJECT_FILE, PATHS),
  run(ctx, opts) {
    const { obj } = ctx.load({ object: OBJECT_FILE, paths: PATHS, rodataSpec: RODATA, rodata: { self_tgid: process.pid } });
    const procs = obj.map('by_process').typed(scalarLayout('u32'), proc_count_layout);
    ctx.session.onFinish(() => {
      const rows: [number, Row][] = procs.entries().map(([k, v]) => [k.value, v]);
      for (const [pid, v] of rows.slice(0, opts.limit)) ctx.out.line(\`\${pid} \${v.comm} \${formatCount(v.count)}\`);
    });
  },
});
`.replace(', type ProcCount }', ' }'));
  let r = sh(process.execPath, [TSC, '-p', 'tsconfig.json'], project);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  // A field the struct does not have, and a run() that is not a function: both type errors.
  writeFileSync(join(project, 'wrong.ts'), `import { defineTool } from 'rbtrace';
import { proc_count_layout } from './demo.skel.js';
const v = proc_count_layout.decode(new DataView(new ArrayBuffer(24)));
export const c: string = v.cmm;
export default defineTool({ name: 'wrong', summary: 'x', run: 42 });
import { SKELETON } from './demo.skel.js';
import type { AttachPath } from 'rbtrace';
export const paths: AttachPath<typeof SKELETON>[] = [{ name: 'raw_tp', programs: ['enter_rw'] }];
`);
  r = sh(process.execPath, [TSC, '-p', 'tsconfig.json'], project);
  assert.equal(r.status, 2, r.stdout);
  assert.match(r.stdout, /wrong\.ts\(4,\d+\): error TS2551: Property 'cmm' does not exist on type 'ProcCount'/);
  assert.match(r.stdout, /wrong\.ts\(5,\d+\): error TS2322/);
  // The starter's paths are typed by the skeleton: a misspelled program is a type error.
  assert.match(r.stdout, /wrong\.ts\(8,\d+\): error TS2820: Type '"enter_rw"' is not assignable to type 'ProgramName'/);
  assert.doesNotMatch(r.stdout, /top\.ts|demo\.ts/, 'only the wrong file fails');
});

test('rbtrace build: a missing clang or bpftool is one line naming the Debian package, exit 1', () => {
  assert.ok(project, 'the install test ran');
  const bin = join(project, 'node_modules/rbtrace/bin/rbtrace');
  let r = sh(process.execPath, [bin, 'build', 'demo.bpf.c'], project, { PATH: '/nonexistent' });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'rbtrace build: clang not found on PATH (it is needed to build BPF objects) (install the Debian package clang: apt-get install clang)\n');
  const onlyClang = join(project, 'only-clang');
  mkdirSync(onlyClang);
  symlinkSync(execFileSync('sh', ['-c', 'command -v clang'], { encoding: 'utf8' }).trim(), join(onlyClang, 'clang'));
  r = sh(process.execPath, [bin, 'build', 'demo.bpf.c'], project, { PATH: onlyClang });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'rbtrace build: bpftool not found on PATH (it is needed to build BPF objects) (install the Debian package bpftool: apt-get install bpftool)\n');
  // A C error: the compiler's first error on the one line, its whole log with -v.
  writeFileSync(join(project, 'broken.bpf.c'), '#include "rbtrace.bpf.h"\nint x = y;\n');
  r = sh(process.execPath, [bin, 'build', 'broken.bpf.c'], project);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^rbtrace build: clang could not compile broken\.bpf\.c: .*broken\.bpf\.c:2:9: error: use of undeclared identifier 'y' \[-v shows the whole log\]\n$/);
  r = sh(process.execPath, [bin, '-v', 'build', 'broken.bpf.c'], project);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^rbtrace build: clang could not compile broken\.bpf\.c: [^\n]*'y'\n[^\n]*broken\.bpf\.c:2:9: error: use of undeclared identifier 'y'\n.*int x = y;/ms);
  // A libbpf macro these headers lack (BPF_UPROBE is not in Debian 12's
  // libbpf 1.1): once an old-style function named BPF_UPROBE, loaded as a
  // program of that name; now one line saying what to use, and no object.
  writeFileSync(join(project, 'up.bpf.c'), '#include "rbtrace.bpf.h"\nSEC("uprobe")\nint BPF_UPROBE(on_malloc)\n{\n\treturn 0;\n}\n');
  r = sh(process.execPath, [bin, 'build', 'up.bpf.c'], project);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^rbtrace build: up\.bpf\.c: a program is named BPF_UPROBE: .*use BPF_KPROBE\/BPF_KRETPROBE in a SEC\("uprobe"\) program\)\n$/);
  assert.ok(!existsSync(join(project, 'up.bpf.o')), 'no object written');
});
