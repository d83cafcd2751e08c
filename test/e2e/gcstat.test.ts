// gcstat end to end: real USDT probes in Debian's libruby.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildC, runRbtrace, startRbtrace, sleep, settledLeftovers } from '../helpers.js';

const OUR_PROGRAMS = ['gc_mark_begin', 'gc_mark_end', 'gc_sweep_begin', 'gc_sweep_end'];

interface Row {
  time: string;
  pid: number;
  comm: string;
  mark: { count: number; total_ns: number; max_ns: number };
  sweep: { count: number; total_ns: number; max_ns: number };
  rss_bytes: number | null;
}

function rows(stdout: string): Row[] {
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => 'mark' in r);
}

const total = (rs: Row[], phase: 'mark' | 'sweep') => rs.reduce((a, r) => a + r[phase].count, 0);

test('40 GC.start: at least 40 marks and 40 sweeps, histograms at exit', async () => {
  const r = await runRbtrace(['gcstat', '--json', '--', 'ruby', '--disable-gems', '-e', '40.times { GC.start }']);
  assert.equal(r.code, 0, r.stderr);
  const rs = rows(r.stderr);
  assert.ok(rs.length >= 1);
  assert.ok(total(rs, 'mark') >= 40, `marks: ${total(rs, 'mark')}`);
  assert.ok(total(rs, 'sweep') >= 40, `sweeps: ${total(rs, 'sweep')}`);
  for (const x of rs) assert.ok(x.mark.max_ns <= x.mark.total_ns && x.mark.total_ns > 0);
  const hists = r.stderr.trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.histogram);
  assert.deepEqual(hists.map((h) => h.histogram), ['mark', 'sweep']);
  assert.equal(hists[0].hist.reduce((a: number, b: { count: number }) => a + b.count, 0), total(rs, 'mark'));
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('RSS rises in the JSON for a script that allocates 200 MB', async () => {
  const r = await runRbtrace(['gcstat', '--json', '-i', '0.25', '--', 'ruby', '--disable-gems', '-e',
    'sleep 0.8; a = "x" * 200_000_000; sleep 1.2; a.size']);
  assert.equal(r.code, 0, r.stderr);
  const rss = rows(r.stderr).map((x) => x.rss_bytes).filter((v): v is number => v !== null);
  assert.ok(rss.length >= 3, r.stderr);
  assert.ok(rss[0] < 100e6, `first RSS ${rss[0]}`);
  assert.ok(Math.max(...rss) >= 200e6, `max RSS ${Math.max(...rss)}`);
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

test('-p on a running Sinatra app under ab load shows GC phases; Ctrl-C detaches', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-sinatra-'));
  const port = await freePort();
  writeFileSync(join(dir, 'app.rb'), `require 'sinatra'
set :bind, '127.0.0.1'
set :port, ${port}
set :logging, false
get('/') { Array.new(2000) { |i| "item #{i}" }.join(',').size.to_s }
`);
  const app = spawn('ruby', [join(dir, 'app.rb')], { stdio: 'ignore' });
  try {
    const start = Date.now();
    for (;;) {
      try {
        execFileSync('curl', ['-sf', `http://127.0.0.1:${port}/`], { stdio: 'ignore' });
        break;
      } catch {
        if (Date.now() - start > 20000) throw new Error('sinatra did not start');
        await sleep(200);
      }
    }
    const rb = startRbtrace(['gcstat', '-v', '--json', '-i', '0.5', '-p', String(app.pid)]);
    await rb.ready();
    execFileSync('ab', ['-q', '-n', '400', '-c', '4', `http://127.0.0.1:${port}/`], { stdio: 'ignore' });
    await sleep(600);
    rb.signal('SIGINT');
    const f = await rb.finished;
    assert.equal(f.code, 0, f.stderr);
    const rs = rows(f.stdout);
    assert.ok(rs.every((x) => x.pid === app.pid));
    assert.ok(total(rs, 'mark') > 0, `no GC seen: ${f.stdout}`);
    assert.ok(total(rs, 'sweep') > 0);
    assert.ok(rs.every((x) => x.rss_bytes !== null && x.rss_bytes > 10e6));
    assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
  } finally {
    app.kill('SIGKILL');
  }
});

test('a ruby without USDT probes: one-line error saying how to get one', async () => {
  // Looks like a statically linked ruby (defines ruby_run_node) but has no .note.stapsdt.
  const fake = buildC('void ruby_run_node(void) {}\nint main(void) { ruby_run_node(); return 0; }', 'ruby');
  const r = await runRbtrace(['gcstat', '--', fake]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^rbtrace gcstat: .*ruby has no USDT probe ruby:gc__mark__begin .*\(.*--enable-dtrace.*\)\n$/);
  const r2 = await runRbtrace(['gcstat', '--lib', fake]);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /--enable-dtrace/);
});

test('human output: table rows and exit histograms', async () => {
  const r = await runRbtrace(['gcstat', '--', 'ruby', '--disable-gems', '-e', '10.times { GC.start }']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /RSS from \/proc\/PID\/status/);
  assert.match(r.stderr, /PID COMM\s+GCS\s+MAJOR\s+MARK#/);
  assert.match(r.stderr, /GC mark: \d+ phases\n\s+usecs\s+: count/);
});

// Issue 25 item 6: what gcstat cannot do is said, never silently dropped.
test('--chart off a terminal is refused (exit 2, one line); a command that runs no Ruby ends with a warning saying so', async () => {
  const c = await runRbtrace(['gcstat', '--chart', '-d', '1', '--', 'ruby', '--disable-gems', '-e', '3.times { GC.start }']);
  assert.equal(c.code, 2, c.stderr);
  assert.equal(c.stderr, 'rbtrace gcstat: --chart draws on a terminal, and stderr is not one (drop --chart (a table is printed), or run it in a terminal)\n');
  const ls = await runRbtrace(['gcstat', '--no-chart', '--', 'ls', '/']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stderr, /no Ruby GC seen: the command ran no Ruby/);
  const ruby = await runRbtrace(['gcstat', '--no-chart', '--', 'ruby', '--disable-gems', '-e', '3.times { GC.start }']);
  assert.equal(ruby.code, 0, ruby.stderr);
  assert.doesNotMatch(ruby.stderr, /no Ruby GC seen/);
});
