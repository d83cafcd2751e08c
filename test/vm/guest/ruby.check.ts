// The kernel matrix's checks of rubycalls and rubyobjnew (run in the test VM
// on each kernel by test/vm/matrix.sh; gcstat's are in paths.check.ts). Both
// have one attach path, usdt on libruby. With -p it attaches to the one
// process on every kernel; without (-- CMD, or system-wide) libbpf needs BPF
// cookies (5.15+) to attach USDT in a shared library to every process: a
// kernel without them must refuse, saying so. Whether the kernel has cookies
// is read from the kernel itself (kallsyms), not from rbtrace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPORT_ON_STDOUT, runRbtrace, startRbtrace, settledLeftovers, type Finished } from '../../helpers.js';

const KERNEL = release();
const COOKIES = /^\S+ [Tt] bpf_get_attach_cookie_trace$/m.test(readFileSync('/proc/kallsyms', 'utf8'));
const PROGRAMS = ['method_entry', 'cmethod_entry', 'object_create', 'string_create', 'array_create', 'hash_create', 'symbol_create'];
const dir = mkdtempSync(join(tmpdir(), 'rbtrace-ruby-check-'));

function ok(f: Finished, what: string): void {
  assert.equal(f.code, 0, `${what}: exit ${f.code}\n${f.stderr}`);
}
const jsonLines = (s: string) => s.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

// The workload: 100 Array#sort (C method), 300 Foo.new on line 3, 200 "ab" on line 4.
const SCRIPT = join(dir, 'work.rb');
writeFileSync(SCRIPT, 'class Foo; end\nuntil File.exist?(ARGV[0]) do sleep 0.05 end\n300.times { Foo.new }\n200.times { "ab" }\n100.times { [3, 1].sort }\n');

/** Run the workload under `tool args`, by -p (once rbtrace is attached) or as its command. */
async function traced(tool: string, args: string[], byPid: boolean): Promise<Finished> {
  const go = join(dir, `go-${tool}-${byPid}`);
  if (!byPid) {
    writeFileSync(go, '');
    return runRbtrace([tool, '--all', '--json', ...args, ...REPORT_ON_STDOUT, '--', 'ruby', '--disable-gems', SCRIPT, go], { timeoutMs: 180000 });
  }
  const ruby = spawn('ruby', ['--disable-gems', SCRIPT, go], { stdio: 'ignore' });
  const r = startRbtrace([tool, '--all', '--json', '-v', ...args, '-p', String(ruby.pid)]);
  await r.ready(150000);
  writeFileSync(go, '');
  const code = await new Promise((res) => ruby.on('close', res));
  assert.equal(code, 0);
  const f = await r.finished;
  return f;
}

for (const byPid of [true, false]) {
  const how = byPid ? '-p PID' : '-- ruby';
  const refused = !byPid && !COOKIES;
  test(`${KERNEL} rubycalls [usdt] ${how}: ${refused ? 'refused, no BPF cookies' : '100 Array#sort, exact'}`, async () => {
    const f = await traced('rubycalls', [], byPid);
    if (refused) {
      assert.equal(f.code, 1, f.stderr);
      assert.match(f.stderr, /no BPF cookies \(5\.15\+\).*give the ruby with -p PID/);
      return;
    }
    ok(f, 'rubycalls');
    const sort = jsonLines(f.stdout).flatMap((x) => x.methods).filter((m) => m.method === 'Array#sort');
    assert.equal(sort.reduce((a, m) => a + m.count, 0), 100, f.stdout);
    assert.deepEqual(await settledLeftovers(PROGRAMS), []);
  });
  test(`${KERNEL} rubyobjnew [usdt] ${how}: ${refused ? 'refused, no BPF cookies' : '300 Foo at line 3, 200 strings of length 2 at line 4, exact'}`, async () => {
    const f = await traced('rubyobjnew', ['--site'], byPid);
    if (refused) {
      assert.equal(f.code, 1, f.stderr);
      assert.match(f.stderr, /no BPF cookies \(5\.15\+\).*give the ruby with -p PID/);
      return;
    }
    ok(f, 'rubyobjnew');
    const rows = jsonLines(f.stdout).flatMap((x) => x.allocations);
    const at = (klass: string, line: number) => rows.filter((a) => a.class === klass && a.site === `${SCRIPT}:${line}`);
    assert.equal(at('Foo', 3).reduce((a, x) => a + x.count, 0), 300, f.stdout);
    assert.equal(at('String', 4).reduce((a, x) => a + x.count, 0), 200, f.stdout);
    assert.equal(at('String', 4).reduce((a, x) => a + x.length, 0), 400, f.stdout);
    assert.deepEqual(await settledLeftovers(PROGRAMS), []);
  });
}

