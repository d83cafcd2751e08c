// The exporter's gcstat on a ruby without USDT probes: Debian 13's ruby3.3
// run from its own root in its own mount namespace (as a container image
// would be), in a cgroup of our own (--cgroup), found by the exporter's scan
// and read through its VM's counters. Oracle: the process's own GC.stat,
// read before and after a window of known collections (5 majors by
// GC.start, 7 minors by GC.start(full_mark: false), more by allocation).
//  - rbtrace_ruby_gc_collections_total{kind,reason="unknown"} deltas = the
//    major_gc_count / minor_gc_count deltas, exactly (the counters are the
//    words GC.stat reads, and the process makes no collection outside the
//    window while the exporter reads it);
//  - rbtrace_ruby_gcs_total{pid} = its GC.count (it started after the
//    exporter: counted from its start); a ruby of the cgroup started before
//    the exporter, after 4 GC.start, shows 0 (counted from the first
//    reading) and stays idle;
//  - rbtrace_ruby_gc_time_seconds_total{phase} deltas = GC.stat's
//    marking_time / sweeping_time deltas within 1 ms (GC.stat truncates the
//    same nanoseconds to whole ms at each read: a delta of two truncated
//    readings is within 1 ms of the truncated delta);
//  - no pause or phase histogram is made up for it;
//  - a second ruby3.3 outside the cgroup, collecting in the same window,
//    is not counted;
//  - when the ruby ends, its per-process series go and the counters stop
//    (nothing stale grows). Its libruby's series stays while any process
//    runs it (other rubies from the same root may: not asserted here; the
//    same code drops USDT libraries, test/e2e/exporter-rubies.test.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, cgroupV2Mount, sleep } from '../helpers.js';
import { attached, lineReader, programIdsOf, scrape, startExporter, stillLoaded, until, valueOf, type Exporter, type Series } from '../exporter-helpers.js';
import { ROOT_RUBY, requireRuby, skipUnless } from '../ruby-root.js';
import { RUBY_SCAN_MS } from '../../src/tools/exporter/rubies.js';

const ORACLE = join(ROOT, 'test/ruby/exporter-vm-oracle.rb');
const MAJORS = 5;
const MINORS = 7;
const COLL = 'rbtrace_ruby_gc_collections_total';
const TIME = 'rbtrace_ruby_gc_time_seconds_total';
const mount = cgroupV2Mount();
const cg = mount ? join(mount, `rbtrace-exp-vm-${process.pid}`) : '';

const children: ChildProcess[] = [];
let exp: Exporter | undefined;
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (exp && exp.run.child.exitCode === null) exp.run.signal('SIGKILL');
  for (let i = 0; cg && i < 60; i++) {
    try { rmdirSync(cg); break; } catch { await sleep(50); }
  }
});

const sumOf = (s: Series[], name: string, labels: Record<string, string> = {}) =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);

/** The oracle under Debian 13's ruby3.3, moved into `cgroup` first when given (the pid stays: every step execs). */
function oracle(cgroup?: string, bootGcs = 0): { child: ChildProcess; next: () => Promise<string> } {
  const argv = ROOT_RUBY.argv(['--disable-gems', ORACLE, String(MAJORS), String(MINORS), String(bootGcs)]);
  const child = spawn('/bin/sh', ['-c', `${cgroup ? `echo $$ > ${cgroup}/cgroup.procs && ` : ''}exec "$@"`, 'sh', ...argv], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  return { child, next: lineReader(child) };
}

test('exporter on ruby 3.3 without USDT: collections by kind, GCs per pid and GC time = its GC.stat; outside --cgroup not counted; gone at exit', { skip: skipUnless(ROOT_RUBY) }, async () => {
  requireRuby(ROOT_RUBY);
  assert.ok(mount, 'a cgroup v2 mount (findmnt -t cgroup2)');
  mkdirSync(cg);
  const earlier = oracle(cg, 3);
  assert.equal(await earlier.next(), 'up');
  await sleep(20); // a clock tick (the start times compared are in 10 ms ticks)
  exp = await startExporter(['--tools', 'gcstat', '--cgroup', cg]);
  await attached(exp);

  const ruby = oracle(cg);
  const outsider = oracle();
  assert.equal(await ruby.next(), 'up');
  assert.equal(await outsider.next(), 'up');
  const pid = String(ruby.child.pid);
  // Found by the scan (every 2 s), its libruby kept without probes, its counters read.
  const found = await until('the rubies read through their VM counters', async () => {
    const s = await scrape(exp!);
    return [pid, String(earlier.child.pid)].every((p) => valueOf(s, 'rbtrace_ruby_gcs_total', { pid: p }) !== undefined) ? s : undefined;
  });
  assert.equal(valueOf(found, 'rbtrace_ruby_gcs_total', { pid: String(earlier.child.pid) }), 0, 'a ruby older than the exporter: counted from its first reading');
  const libs = found.filter((x) => x.name === 'rbtrace_ruby_binary_processes' && x.labels.source === 'vm-counters');
  assert.equal(libs.length, 1, JSON.stringify(libs));
  assert.match(libs[0].labels.binary, /libruby-3\.3\.so/);
  // Other rubies from the same root may run on this machine: the count is the file's, not scoped.
  assert.ok(libs[0].value >= 3, `our three rubies run that libruby: ${libs[0].value}`);
  assert.equal(valueOf(found, 'rbtrace_ruby_gcs_total', { pid: String(outsider.child.pid) }), undefined, 'the ruby outside the cgroup is not read');
  assert.match(exp.run.stderr, /kept \S*libruby-3\.3\.so\S* \(\S+\) of process \d+ without probes/);

  await sleep(300); // a poll (100 ms) after the last change, and past the 200 ms coalescing
  const before = await scrape(exp);
  ruby.child.stdin!.write('go\n');
  outsider.child.stdin!.write('go\n');
  assert.equal(await ruby.next(), 'done');
  assert.equal(await outsider.next(), 'done');
  await sleep(300);
  const afterRun = await scrape(exp);
  ruby.child.stdin!.write('dump\n');
  const o = JSON.parse(await ruby.next()) as { count: number; major: number; minor: number; marking_ms: number; sweeping_ms: number; gc_count: number };

  const d = (name: string, labels: Record<string, string> = {}) => sumOf(afterRun, name, labels) - sumOf(before, name, labels);
  assert.ok(o.major >= MAJORS && o.minor >= MINORS, JSON.stringify(o));
  assert.equal(d(COLL, { kind: 'major' }), o.major, 'major = GC.stat(:major_gc_count) delta');
  assert.equal(d(COLL, { kind: 'minor' }), o.minor, 'minor = GC.stat(:minor_gc_count) delta');
  assert.equal(d(COLL), o.count, 'every collection, and only this ruby\'s');
  assert.equal(d(COLL, { kind: 'major', reason: 'unknown', major_by: 'unknown' }), o.major, 'majors: reason and major_by unknown');
  assert.equal(d(COLL, { kind: 'minor', reason: 'unknown', major_by: 'none' }), o.minor, 'minors: reason unknown, no major_by');
  assert.equal(valueOf(afterRun, 'rbtrace_ruby_gcs_total', { pid }), o.gc_count, 'GCs of the pid = its GC.count (counted from its start)');
  const ms = (phase: string) => d(TIME, { phase }) * 1e3;
  assert.ok(Math.abs(ms('mark') - o.marking_ms) <= 1 + 1e-6, `mark ${ms('mark')} ms, GC.stat(:marking_time) ${o.marking_ms} ms`);
  assert.ok(Math.abs(ms('sweep') - o.sweeping_ms) <= 1 + 1e-6, `sweep ${ms('sweep')} ms, GC.stat(:sweeping_time) ${o.sweeping_ms} ms`);
  assert.ok(ms('mark') > 0, 'GC time read');
  assert.equal(valueOf(afterRun, TIME, { phase: 'total' }), undefined, '3.3 keeps mark and sweep apart');
  for (const h of ['rbtrace_ruby_gc_pause_seconds_count', 'rbtrace_ruby_gc_seconds_count']) assert.equal(d(h), 0, `${h}: no histogram from the counters`);

  // The rubies end: the pid's series go, the counters stay still.
  ruby.child.stdin!.end();
  await new Promise((res) => (ruby.child.exitCode === null ? ruby.child.on('exit', res) : res(null)));
  for (const r of [outsider, earlier]) {
    r.child.stdin!.end();
    await new Promise((res) => (r.child.exitCode === null ? r.child.on('exit', res) : res(null)));
  }
  await sleep(300);
  const ended = await scrape(exp);
  assert.equal(valueOf(ended, 'rbtrace_ruby_gcs_total', { pid }), undefined, 'an ended ruby leaves the output');
  assert.equal(valueOf(ended, 'rbtrace_ruby_rss_bytes', { pid }), undefined);
  // Past the next scan, which forgets the processes (the libruby itself stays while another ruby from the root runs).
  await sleep(RUBY_SCAN_MS + 500);
  const gone = await scrape(exp);
  assert.equal(valueOf(gone, 'rbtrace_ruby_gcs_total', { pid }), undefined);
  for (const name of [COLL, TIME]) assert.equal(sumOf(gone, name), sumOf(ended, name), `${name}: nothing counted once the rubies ended`);

  const ids = programIdsOf(exp.run.child.pid!);
  exp.run.signal('SIGTERM');
  const f = await exp.run.finished;
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(await stillLoaded(ids), []);
});
