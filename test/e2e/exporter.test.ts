// rbtrace exporter end to end: one exporter with every default tool, known
// work (a C program with N known syscalls and K failing execs, a backlog-8
// listener that overflows, a ruby doing GC.start), exact figures on
// /metrics; then what a daemon meets (parallel scrapes, SIGHUP, vanishing
// listeners and processes, a series limit, SIGTERM during and after attach).
//
// The exporter sees the whole machine, which other people share: figures are
// compared as differences between two scrapes, of calls nobody else makes
// (sysfs(2), execve failing with ENOEXEC), and of our own listeners.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRbtrace, sleep } from '../helpers.js';
import { attached, buildWorkload, get, programIdsOf, stillLoaded, parseMetrics, scrape, startExporter, valueOf, type Exporter, type Series } from '../exporter-helpers.js';

const PROG = buildWorkload();

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-exporter-'));
const NOT_A_BINARY = join(dir, 'not-a-binary');
writeFileSync(NOT_A_BINARY, 'garbage, not ELF and no #!\n');
chmodSync(NOT_A_BINARY, 0o755);

const scrapes: Series[][] = [];
let exp: Exporter;
// No series limit in the way: other tests on this machine may hold thousands of listeners.
const started = startExporter(['--max-series', '1000000']);

async function take(): Promise<Series[]> {
  await sleep(250); // past the exporter's 200 ms coalescing of readings
  const s = await scrape(exp);
  scrapes.push(s);
  return s;
}

const delta = (a: Series[], b: Series[], name: string, labels: Record<string, string> = {}) =>
  (valueOf(b, name, labels) ?? 0) - (valueOf(a, name, labels) ?? 0);

after(async () => {
  if (exp && exp.run.child.exitCode === null) exp.run.signal('SIGKILL');
});

test('503 from /healthz and /metrics until every probe is attached, then 200 with all four tools', async () => {
  exp = await started;
  const seen: number[] = [];
  for (;;) {
    const [h, m] = await Promise.all([get(`${exp.url}/healthz`), get(`${exp.url}/metrics`)]);
    seen.push(h.status, m.status);
    if (h.status === 200 && m.status === 200) break;
    for (const r of [h, m]) assert.ok(r.status === 503 || r.status === 200, `${r.status} ${r.body}`);
    await sleep(10);
  }
  assert.ok(seen.includes(503), `a scrape during attach got 503: ${seen}`);
  await attached(exp);
  const s = await take();
  const tools = s.filter((x) => x.name === 'rbtrace_exporter_tool_info').map((x) => x.labels.tool).sort();
  assert.deepEqual(tools, ['execsnoop', 'gcstat', 'synqueue', 'syscount']);
  // Every tool has its count of runs the kernel skipped (0 on a quiet machine).
  assert.deepEqual(s.filter((x) => x.name === 'rbtrace_exporter_skipped_runs_total').map((x) => x.labels.tool).sort(), tools);
  const text = await get(`${exp.url}/metrics`);
  assert.equal(text.type, 'text/plain; version=0.0.4; charset=utf-8');
  const om = await get(`${exp.url}/metrics`, 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5');
  assert.equal(om.type, 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  assert.ok(om.body.endsWith('# EOF\n'));
  assert.match(om.body, /^# TYPE rbtrace_syscalls counter$/m);
  assert.equal((await get(`${exp.url}/nope`)).status, 404);
});

test('N sysfs calls, M failing with EINVAL, K execs failing with ENOEXEC: exact, and equal to strace -c -f', async () => {
  const [N, M, K] = [1234, 56, 7];
  const before = await take();
  execFileSync(PROG, ['calls', String(N), String(M), String(K), NOT_A_BINARY]);
  const afterRun = await take();
  assert.equal(delta(before, afterRun, 'rbtrace_syscalls_total', { syscall: 'sysfs' }), N + M);
  assert.equal(delta(before, afterRun, 'rbtrace_syscall_errors_total', { syscall: 'sysfs', errno: 'EINVAL' }), M);
  assert.equal(delta(before, afterRun, 'rbtrace_execs_total', { result: 'ENOEXEC' }), K);
  assert.ok(delta(before, afterRun, 'rbtrace_execs_total', { result: 'ok' }) >= 1, 'the program\'s own exec');

  // The independent oracle: strace counts the same program's calls.
  const out = join(dir, 'strace.txt');
  execFileSync('strace', ['-f', '-c', '-o', out, PROG, 'calls', String(N), String(M), String(K), NOT_A_BINARY]);
  const row = (name: string) => readFileSync(out, 'utf8').split('\n').find((l) => l.trim().endsWith(` ${name}`))!.trim().split(/\s+/);
  assert.deepEqual(row('sysfs').slice(3, 5).map(Number), [N + M, M], 'strace: calls, errors');
  assert.equal(Number(row('execve')[3]), K + 1, 'strace: execve calls (K failing + the program\'s own)');
});

function start(args: string[]): { child: ChildProcess; line: Promise<string> } {
  const child = spawn(PROG, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = new Promise<string>((resolve) => {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.split('\n')[0]);
    });
  });
  return { child, line };
}

/** sk_drops of one listener as ss shows it (skmem d): the kernel's own per-socket count. */
function ssDrops(port: number): number {
  const out = execFileSync('ss', ['-Hltnm', `sport = :${port}`], { encoding: 'utf8' });
  return Number(/\bd(\d+)\)/.exec(out)![1]);
}

test('backlog-8 listener, 40 connects, never accepted: queue 9 of 8, 31 overflows and drops (= ss skmem d); gone when closed', async () => {
  const l = start(['listen', '8']);
  const idle = start(['listen', '16']);
  const [port, idlePort] = [Number(await l.line), Number(await idle.line)];
  const lab = { addr: '127.0.0.1', port: String(port) };
  try {
    const s0 = await take();
    assert.equal(valueOf(s0, 'rbtrace_listen_overflows_total', lab), 0);
    execFileSync(PROG, ['connect', String(port), '40']);
    const s1 = await take();
    assert.equal(valueOf(s1, 'rbtrace_listen_accept_queue_length', lab), 9, 'sk_acceptq_is_full is length > limit: 9 fit');
    assert.equal(valueOf(s1, 'rbtrace_listen_accept_queue_limit', lab), 8);
    assert.equal(valueOf(s1, 'rbtrace_listen_accept_queue_max', lab), 9);
    assert.equal(valueOf(s1, 'rbtrace_listen_overflows_total', lab), 31);
    assert.equal(valueOf(s1, 'rbtrace_listen_overflows_total', lab), ssDrops(port), 'the kernel\'s sk_drops of this listener');
    assert.equal(valueOf(s1, 'rbtrace_listen_drops_total', lab), 31, 'every overflow is a listen drop, and there was no other');
    const netns = s1.find((x) => x.name === 'rbtrace_listen_overflows_total' && x.labels.port === String(port))!.labels.netns;
    assert.match(netns, /^\d+$/);
    const idleLab = { addr: '127.0.0.1', port: String(idlePort) };
    for (const name of ['overflows_total', 'drops_total', 'accept_queue_length', 'accept_queue_max', 'syn_queue_length']) {
      assert.equal(valueOf(s1, `rbtrace_listen_${name}`, idleLab), 0, `idle listener ${name}`);
    }
    assert.equal(valueOf(s1, 'rbtrace_listen_accept_queue_limit', idleLab), 16);
    const s2 = await take();
    assert.equal(valueOf(s2, 'rbtrace_listen_overflows_total', lab), 31, 'no new overflow: the counter holds');
  } finally {
    l.child.stdin!.end();
    idle.child.stdin!.end();
  }
  await new Promise((r) => l.child.on('exit', r));
  const s3 = await take();
  assert.equal(valueOf(s3, 'rbtrace_listen_overflows_total', lab), undefined, 'a closed listener leaves the output');
  assert.equal(valueOf(s3, 'rbtrace_listen_accept_queue_length', lab), undefined);
});

const HOSTILE = 'r"b\\y\nx'; // what a process may call itself: quote, backslash, newline

// Other rubies may collect at the same time (the exporter sees the machine):
// the exact figure is the pid's own series; the histogram, of every ruby,
// grows by at least as much (its exact growth, in a cgroup of its own, is
// checked in test/e2e/exporter-ruby.test.ts).
test('ruby doing 40 GC.start: its GCs per pid = its GC.count, mark histogram grows by as much at least, RSS per pid with a hostile comm escaped, gone at exit', async () => {
  const before = await take();
  const ruby = spawn('ruby', ['--disable-gems', '-e',
    `File.write("/proc/self/comm", ${JSON.stringify(HOSTILE)}); 40.times { GC.start }; STDOUT.puts GC.count; STDOUT.flush; STDIN.read`],
  { stdio: ['pipe', 'pipe', 'inherit'] });
  const gcCount = Number(await new Promise<string>((resolve) => ruby.stdout!.setEncoding('utf8').once('data', resolve)));
  try {
    const s = await take();
    assert.ok(gcCount >= 40);
    // A new process, traced from its start (the system's libruby is attached for the whole run): all its GCs.
    assert.equal(valueOf(s, 'rbtrace_ruby_gcs_total', { pid: String(ruby.pid) }), gcCount, `one mark phase per GC of pid ${ruby.pid} (GC.count ${gcCount})`);
    const marks = delta(before, s, 'rbtrace_ruby_gc_seconds_count', { phase: 'mark' });
    assert.ok(marks >= gcCount, `mark histogram: ${marks} phases, at least this ruby's ${gcCount}`);
    assert.equal(delta(before, s, 'rbtrace_ruby_gc_seconds_bucket', { phase: 'mark', le: '+Inf' }), marks);
    assert.ok(delta(before, s, 'rbtrace_ruby_gc_seconds_sum', { phase: 'mark' }) > 0);
    // Buckets are cumulative and end at the count.
    const buckets = s.filter((x) => x.name === 'rbtrace_ruby_gc_seconds_bucket' && x.labels.phase === 'mark').map((x) => x.value);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i] >= buckets[i - 1]);
    const rss = s.filter((x) => x.name === 'rbtrace_ruby_rss_bytes' && x.labels.pid === String(ruby.pid));
    assert.equal(rss.length, 1, JSON.stringify(rss));
    assert.equal(rss[0].labels.comm, HOSTILE, 'the label value round-trips through the escaping');
    const vmrss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${ruby.pid}/status`, 'utf8'))![1]) * 1024;
    assert.equal(rss[0].value, vmrss, 'VmRSS of the idle ruby');
    const raw = (await get(`${exp.url}/metrics`)).body;
    assert.ok(raw.includes(`comm="r\\"b\\\\y\\nx"`), 'escaped as the text format wants');
  } finally {
    ruby.stdin!.end();
  }
  await new Promise((r) => ruby.on('exit', r));
  const gone = await take();
  assert.equal(gone.filter((x) => x.name === 'rbtrace_ruby_rss_bytes' && x.labels.pid === String(ruby.pid)).length, 0, 'an ended process leaves the output');
});

test('100 scrapes in parallel all answer 200 with whole documents; SIGHUP leaves it running', async () => {
  const rs = await Promise.all(Array.from({ length: 100 }, () => get(`${exp.url}/metrics`)));
  for (const r of rs) {
    assert.equal(r.status, 200);
    assert.ok(parseMetrics(r.body).some((x) => x.name === 'rbtrace_exporter_tool_info'));
  }
  exp.run.signal('SIGHUP');
  await exp.run.waitFor(() => /SIGHUP: nothing to reload/.test(exp.run.stderr), 5000, 'the SIGHUP log line');
  assert.equal((await get(`${exp.url}/healthz`)).status, 200);
  await take();
});

test('counters never went backwards between any two scrapes of this run', () => {
  assert.ok(scrapes.length >= 8);
  const key = (x: Series) => `${x.name}${JSON.stringify(x.labels)}`;
  for (let i = 1; i < scrapes.length; i++) {
    const prev = new Map(scrapes[i - 1].filter((x) => x.name.endsWith('_total') || x.name.endsWith('_count') || x.name.endsWith('_bucket')).map((x) => [key(x), x.value]));
    for (const x of scrapes[i]) {
      const p = prev.get(key(x));
      if (p !== undefined) assert.ok(x.value >= p, `${key(x)}: ${p} -> ${x.value}`);
    }
  }
});

test('SIGTERM: exit 0 and every program detached', async () => {
  const ids = programIdsOf(exp.run.child.pid!);
  assert.ok(ids.length >= 8, `the exporter holds its programs: ${ids}`);
  exp.run.signal('SIGTERM');
  const f = await exp.run.finished;
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stderr, /SIGTERM: every probe detached/);
  assert.deepEqual(await stillLoaded(ids), []);
});

test('--max-series 2: two listener series shown, the rest dropped and counted', async () => {
  const ls = [start(['listen', '4']), start(['listen', '4']), start(['listen', '4'])];
  await Promise.all(ls.map((l) => l.line));
  const e = await startExporter(['--tools', 'synqueue', '--max-series', '2']);
  try {
    await attached(e);
    const s = await scrape(e);
    assert.equal(s.filter((x) => x.name === 'rbtrace_listen_overflows_total').length, 2);
    assert.ok((valueOf(s, 'rbtrace_exporter_dropped_series_total', { family: 'rbtrace_listen_overflows' }) ?? 0) >= 2, 'our 3 listeners and the exporter\'s own: at least 2 dropped');
    e.run.signal('SIGTERM');
    assert.equal((await e.run.finished).code, 0);
  } finally {
    ls.forEach((l) => l.child.stdin!.end());
    if (e.run.child.exitCode === null) e.run.signal('SIGKILL');
  }
});

test('SIGTERM while attaching detaches what was attached; bad --listen and a taken port are one-line errors', async () => {
  const e = await startExporter();
  // Wait for the first tool to attach, then stop it while the others attach.
  await e.run.waitFor(() => /: attached \(/.test(e.run.stderr), 20000, 'a first tool');
  const ids = programIdsOf(e.run.child.pid!);
  e.run.signal('SIGTERM');
  const f = await e.run.finished;
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(await stillLoaded(ids), []);

  const bad = await runRbtrace(['exporter', '--listen', 'nowhere']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^rbtrace exporter: --listen wants HOST:PORT, got 'nowhere' \(e\.g\. .*\)\n$/);
  const unknown = await runRbtrace(['exporter', '--tools', 'syscount,bogus']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^rbtrace exporter: --tools: unknown tool 'bogus' \(pick from: .*\)\n$/);

  const holder = await startExporter(['--tools', 'execsnoop']);
  try {
    const taken = await runRbtrace(['exporter', '--listen', `127.0.0.1:${holder.port}`]);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /^rbtrace exporter: cannot listen on 127\.0\.0\.1:\d+: address in use .*\(pick another with --listen HOST:PORT\)\n$/);
  } finally {
    holder.run.signal('SIGTERM');
    await holder.run.finished;
  }
});

test('--cgroup DIR: only the calls of a process in that cgroup v2 directory are counted, exactly', async () => {
  const mount = execFileSync('findmnt', ['-n', '-o', 'TARGET', '-t', 'cgroup2'], { encoding: 'utf8' }).trim().split('\n')[0];
  assert.ok(mount, 'a cgroup v2 mount (findmnt -t cgroup2)');
  const cg = join(mount, `rbtrace-exporter-${process.pid}`);
  mkdirSync(cg);
  const e = await startExporter(['--tools', 'syscount', '--cgroup', cg]);
  try {
    await attached(e);
    const before = await scrape(e);
    // The same program twice: 300 sysfs calls inside the directory (the shell
    // moves itself in, then execs it), 500 outside.
    execFileSync('/bin/sh', ['-c', `echo $$ > ${cg}/cgroup.procs && exec "$0" calls 300 0 0 "$1"`, PROG, NOT_A_BINARY]);
    execFileSync(PROG, ['calls', '500', '0', '0', NOT_A_BINARY]);
    await sleep(250);
    const afterRun = await scrape(e);
    assert.equal(delta(before, afterRun, 'rbtrace_syscalls_total', { syscall: 'sysfs' }), 300);
    e.run.signal('SIGTERM');
    assert.equal((await e.run.finished).code, 0);
  } finally {
    if (e.run.child.exitCode === null) e.run.signal('SIGKILL');
    for (let i = 0; i < 60; i++) {
      try {
        rmdirSync(cg);
        break;
      } catch {
        await sleep(50);
      }
    }
  }
});
