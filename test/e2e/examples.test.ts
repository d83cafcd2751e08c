// examples/: the RbBCC talk's programs as rbtrace tools, each built with
// `rbtrace build` and run with `rbtrace run` (as a user would, from a copy
// outside the checkout) against a workload whose answer is known exactly.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, buildC, runRbtrace, startRbtrace, settledLeftovers } from '../helpers.js';

const EXAMPLES = ['execve', 'synq', 'rawsys', 'strnew', 'gcrss', 'allocs'];
let dir = '';

// With -- CMD the records are on stderr (the command owns stdout), among rbtrace's warnings if any.
const records = (text: string) => text.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rbtrace-examples-'));
  for (const f of readdirSync(join(ROOT, 'examples'))) if (/\.(bpf\.c|ts)$/.test(f)) copyFileSync(join(ROOT, 'examples', f), join(dir, f));
  for (const name of EXAMPLES) {
    const r = await runRbtrace(['build', join(dir, `${name}.bpf.c`)], { timeoutMs: 120000 });
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
  }
});

test('the examples type-check against the SDK\'s declarations (tsc, strict)', () => {
  // 'rbtrace' resolved to this checkout's emitted d.ts, as an installed package's `types` would be;
  // ES modules, as in a package with "type": "module".
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'examples', private: true, type: 'module' }));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true,
      types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')], paths: { rbtrace: [join(ROOT, 'dist/src/sdk.d.ts')] },
    },
    include: ['*.ts'],
  }));
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('execve: a shell running /bin/true 7 times, 7 execs of /bin/true (kprobe, else the tracepoint)', async () => {
  // -o -: an SDK tool's report on stdout too (the shell prints nothing).
  const r = await runRbtrace(['run', join(dir, 'execve.ts'), '--json', '-v', '-o', '-', '--', 'sh', '-c', 'for i in 1 2 3 4 5 6 7; do /bin/true; done']);
  assert.equal(r.code, 0, r.stderr);
  const execs = records(r.stdout).filter((e) => e.filename === '/bin/true');
  assert.equal(execs.length, 7, r.stdout);
  assert.equal(new Set(execs.map((e) => e.pid)).size, 7, 'one process each');
  assert.equal(new Set(execs.map((e) => e.ppid)).size, 1, 'all children of the shell');
  // Where kprobes exist the kprobe path runs; here (CONFIG_KPROBES=n) the tracepoint.
  assert.match(r.stderr, /attach path: (kprobe|tracepoint) /);
  if (/attach path: tracepoint/.test(r.stderr)) assert.match(r.stderr, /attach path kprobe unavailable: /);
  // The fallback itself, forced, whatever this kernel has.
  const forced = await runRbtrace(['run', join(dir, 'execve.ts'), '--json', '--', 'sh', '-c', '/bin/true; /bin/true'], { env: { RBTRACE_ATTACH: 'tracepoint' } });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(records(forced.stderr).filter((e) => e.filename === '/bin/true').length, 2);
  assert.deepEqual(await settledLeftovers(['kp_execve', 'tp_execve']), []);
});

test('synq: one event per SYN to a listener (fentry or kprobe); else the standard one-line error', async () => {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as AddressInfo).port;
  try {
    const run = startRbtrace(['run', join(dir, 'synq.ts'), '--json', '-v', '--port', String(port), '-d', '20']);
    try {
      await run.ready();
    } catch {
      // This machine: no kprobes (CONFIG_KPROBES=n) and fentry refused (EPERM).
      const f = await run.finished;
      assert.equal(f.code, 1);
      const last = f.stderr.trim().split('\n').filter((l) => l.startsWith('rbtrace synq: no attach path'));
      assert.equal(last.length, 1, f.stderr);
      assert.match(last[0], /^rbtrace synq: no attach path works on this kernel: fentry: .+; kprobe: .+ \(run rbtrace doctor to see what this kernel offers\)$/);
      assert.equal(f.stdout, '');
      assert.deepEqual(await settledLeftovers(['fe_conn_request', 'kp_conn_request']), []);
      return;
    }
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((res, rej) => createConnection(port, '127.0.0.1').on('connect', function (this: import('node:net').Socket) { this.destroy(); res(); }).on('error', rej));
    }
    run.signal('SIGINT');
    const f = await run.finished;
    assert.equal(f.code, 0, f.stderr);
    const syns = records(f.stdout).filter((e) => e.port === port);
    assert.equal(syns.length, 5);
    for (const s of syns) assert.ok(s.max_backlog > 0 && s.backlog <= s.max_backlog);
  } finally {
    server.close();
  }
});

test('rawsys: a C program writing 37 times to /dev/null, 37 write events = 1 on its fd', async () => {
  const prog = buildC('#include <fcntl.h>\n#include <unistd.h>\nint main(void) { int fd = open("/dev/null", O_WRONLY); if (fd != 3) return 9; for (int i = 0; i < 37; i++) write(fd, "x", 1); return 0; }\n', 'writes');
  const r = await runRbtrace(['run', join(dir, 'rawsys.ts'), '--json', '--', prog]);
  assert.equal(r.code, 0, r.stderr);
  const evs = records(r.stderr);
  const writes = evs.filter((e) => e.syscall === 'write');
  assert.equal(writes.length, 37);
  for (const w of writes) assert.deepEqual([w.args[0], w.args[2], w.ret, w.comm], [3, 1, 1, 'writes']);
  assert.ok(evs.some((e) => e.syscall === 'openat' && e.ret === 3), 'the open that made fd 3');
  assert.equal(new Set(evs.map((e) => e.pid)).size, 1, 'only the command');
  // strace-like text
  const text = await runRbtrace(['run', join(dir, 'rawsys.ts'), '--', prog]);
  assert.equal(text.code, 0, text.stderr);
  assert.equal(text.stderr.split('\n').filter((l) => /^\[\d+\] write\(3, 0x[0-9a-f]+, 1, .*\) = 1 <\d+\.\d{6}>$/.test(l)).length, 37);
  assert.deepEqual(await settledLeftovers(['sys_enter', 'sys_exit']), []);
});

test('strnew: rb_str_new called 500 times with length 4242 through Fiddle: count 500 in the histogram', async () => {
  const script = join(dir, 'strnew.rb');
  writeFileSync(script, "require 'fiddle'\nf = Fiddle::Function.new(Fiddle::Handle::DEFAULT['rb_str_new'], [Fiddle::TYPE_VOIDP, Fiddle::TYPE_LONG], Fiddle::TYPE_VOIDP)\nbuf = Fiddle::Pointer.malloc(4242)\n500.times { f.call(buf, 4242) }\n");
  const r = await runRbtrace(['run', join(dir, 'strnew.ts'), '--json', '--len', '4242', '--', 'ruby', '--disable-gems', script]);
  assert.equal(r.code, 0, r.stderr);
  const [rep] = records(r.stderr);
  assert.equal(rep.count, 500);
  assert.equal(rep.hist.reduce((a: number, b: { count: number }) => a + b.count, 0), 500);
  // Without --len: those 500 and every other string ruby makes.
  const all = await runRbtrace(['run', join(dir, 'strnew.ts'), '--json', '--', 'ruby', '--disable-gems', script]);
  assert.equal(all.code, 0, all.stderr);
  assert.ok(records(all.stderr)[0].count > 500);
  assert.deepEqual(await settledLeftovers(['str_new_enter', 'str_new_return']), []);
});

test('gcrss: GCs counted by the USDT probe = the same run\'s GC.count, with RSS', async () => {
  const out = join(dir, 'gc.count');
  const r = await runRbtrace(['run', join(dir, 'gcrss.ts'), '--json', '--', 'ruby', '--disable-gems', '-e',
    `at_exit { File.write(${JSON.stringify(out)}, GC.count.to_s) }; 30.times { GC.start }; a = []; 200_000.times { a << "x" * 50 }; sleep 1.2`]);
  assert.equal(r.code, 0, r.stderr);
  const recs = records(r.stderr);
  const [total] = recs.filter((x) => x.total_gcs !== undefined);
  const gcCount = Number(execFileSync('cat', [out], { encoding: 'utf8' }));
  assert.ok(gcCount >= 30);
  assert.equal(total.total_gcs, gcCount, 'exact: the probe fires once per collection');
  const perSecond = recs.filter((x) => x.gcs !== undefined);
  assert.equal(perSecond.reduce((a, x) => a + x.gcs, 0), gcCount, 'the per-second rows add up');
  assert.ok(perSecond.some((x) => x.rss_bytes > 1 << 20), 'RSS of the live process (MiB)');
  assert.deepEqual(await settledLeftovers(['gc_mark_begin', 'gc_mark_end']), []);
});

test('allocs: a Rust program making 300 vectors of 100,000 bytes grown to 200,001: exact size buckets', async () => {
  const bin = join(dir, 'vecs');
  execFileSync('rustc', ['-O', '-o', bin, join(ROOT, 'examples/workloads/vecs.rs')], { stdio: 'pipe' });
  const r = await runRbtrace(['run', join(dir, 'allocs.ts'), '--json', '--', bin, '300']);
  assert.equal(r.code, 0, r.stderr);
  const by = Object.fromEntries(records(r.stderr).map((x) => [x.function, x]));
  const bucket = (fn: string, low: number) => by[fn].sizes.find((b: { low: number }) => b.low === low)?.count;
  assert.equal(bucket('malloc', 65536), 300, 'Vec::with_capacity(100_000): malloc(100000)');
  assert.equal(bucket('realloc', 131072), 300, 'reserve_exact: realloc(p, 200001)');
  assert.ok(by.malloc.calls >= 300 && by.free.calls >= 300, JSON.stringify(by));
  assert.ok(by.realloc.bytes >= 300 * 200001);
  assert.deepEqual(await settledLeftovers(['on_malloc', 'on_free', 'on_realloc']), []);
});
