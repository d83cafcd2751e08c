// biolatency end to end: dd doing direct I/O on a loop device of our own
// (nothing else on the machine touches it, so counts can be exact), checked
// against the kernel's own accounting in /sys/block/DEV/stat and against the
// offsets dd was told to use.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { runRbtrace, settledLeftovers, sleep, startRbtrace } from '../helpers.js';

const OUR_PROGRAMS = ['tb_insert', 'tb_issue', 'tb_complete', 'rt_insert', 'rt_issue', 'rt_complete'];

const dir = mkdtempSync(join(tmpdir(), 'rbtrace-bio-'));
const image = join(dir, 'disk.img');
execFileSync('truncate', ['-s', '64M', image]);
const LOOP = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
const DISK = basename(LOOP);
after(() => {
  execFileSync('losetup', ['-d', LOOP]);
  rmSync(dir, { recursive: true, force: true });
});

/** /sys/block/DEV/stat (Documentation/block/stat.rst): ios, sectors and ms per direction. */
function stat(): { reads: number; readSectors: number; readMs: number; writes: number; writeSectors: number; writeMs: number; flushes: number } {
  const f = readFileSync(`/sys/block/${DISK}/stat`, 'utf8').trim().split(/\s+/).map(Number);
  return { reads: f[0], readSectors: f[2], readMs: f[3], writes: f[4], writeSectors: f[6], writeMs: f[7], flushes: f[14] ?? 0 };
}

function dd(args: string[]): void {
  execFileSync('dd', [...args, 'status=none']);
}

interface Hist { disk?: string; op?: string; count: number; total_ns: number; bytes: number; hist: { low: number; high: number; count: number }[] }

for (const path of ['tp_btf', 'raw_tp']) {
  test(`per-op counts and bytes equal /sys/block stat for direct dd reads and writes (${path})`, async () => {
    const r = startRbtrace(['biolatency', '-v', '--json', '-D', '-F', '--disk', DISK, '--attach', path]);
    await r.ready();
    const before = stat();
    dd(['if=/dev/zero', `of=${LOOP}`, 'bs=4k', 'count=300', 'oflag=direct']);
    dd(['if=/dev/zero', `of=${LOOP}`, 'bs=64k', 'count=20', 'seek=100', 'oflag=direct']);
    dd([`if=${LOOP}`, 'of=/dev/null', 'bs=4k', 'count=700', 'skip=3', 'iflag=direct']);
    await sleep(200);
    const delta = (a: number, b: number) => a - b;
    const now = stat();
    r.signal('SIGINT');
    const f = await r.finished;
    assert.equal(f.code, 0, f.stderr);
    const rec = JSON.parse(f.stdout.trim().split('\n').at(-1)!) as { unit: string; hists: Hist[] };
    assert.equal(rec.unit, 'usecs');
    const byOp = new Map(rec.hists.map((h) => [h.op, h]));
    for (const h of rec.hists) assert.equal(h.disk, DISK);
    const read = byOp.get('read')!;
    const write = byOp.get('write')!;
    // Exact: the device is ours; the kernel counts a request in stat at the
    // same completion the tracepoint reports.
    assert.equal(read.count, delta(now.reads, before.reads));
    assert.equal(write.count, delta(now.writes, before.writes));
    assert.ok(read.count >= 700 && write.count >= 320, `${read.count} reads, ${write.count} writes`);
    assert.equal(read.bytes, delta(now.readSectors, before.readSectors) * 512);
    assert.equal(write.bytes, delta(now.writeSectors, before.writeSectors) * 512);
    assert.equal(write.bytes, 300 * 4096 + 20 * 65536);
    // Each histogram's slots add up to its count.
    for (const h of rec.hists) assert.equal(h.hist.reduce((a, b) => a + b.count, 0), h.count);
    // Time: stat's ms run from the request's allocation (before issue) to its
    // completion and are truncated to whole ms when read, so device time is
    // below stat's + 1 ms per reading (2 readings); on a loop device the
    // time before issue is small, so device time is most of it (> 25%).
    for (const [h, ms] of [[read, delta(now.readMs, before.readMs)], [write, delta(now.writeMs, before.writeMs)]] as const) {
      assert.ok(h.total_ns < (ms + 2) * 1e6, `${h.op}: ${h.total_ns} ns vs stat ${ms} ms`);
      assert.ok(h.total_ns > ms * 1e6 * 0.25, `${h.op}: ${h.total_ns} ns vs stat ${ms} ms`);
    }
    assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
  });
}

test('--events (biosnoop) -Q -- CMD: one line per I/O of the command, at the sectors dd was given', async () => {
  // A write by another process in the same run is not the command's: absent.
  // -o -: the records alone on stdout (dd prints nothing there), -v's chatter on stderr.
  const r = startRbtrace(['biolatency', '-v', '--json', '--events', '-Q', '--disk', DISK, '-o', '-', '--',
    'dd', `if=${LOOP}`, 'of=/dev/null', 'bs=8k', 'count=25', 'skip=40', 'iflag=direct', 'status=none']);
  const other = setInterval(() => dd(['if=/dev/zero', `of=${LOOP}`, 'bs=4k', 'count=1', 'seek=5000', 'oflag=direct']), 20);
  const f = await r.finished;
  clearInterval(other);
  assert.equal(f.code, 0, f.stderr);
  const events = f.stdout.trim().split('\n').map((l) => JSON.parse(l) as { comm: string; op: string; sector: number; bytes: number; disk: string; latency_ns: number; queued_ns: number });
  assert.equal(events.length, 25);
  events.forEach((e, i) => {
    assert.equal(e.comm, 'dd');
    assert.equal(e.disk, DISK);
    assert.equal(e.op, 'read');
    assert.equal(e.bytes, 8192);
    assert.equal(e.sector, (40 + i) * 16); // skip=40 blocks of 8 KiB = 16 sectors
    assert.ok(e.latency_ns > 0 && e.latency_ns >= e.queued_ns && e.latency_ns < 1e9);
  });
});

test('text: -m histograms in msecs; the biosnoop header', async () => {
  const r = startRbtrace(['biolatency', '-v', '-m', '--disk', DISK]);
  await r.ready();
  dd([`if=${LOOP}`, 'of=/dev/null', 'bs=4k', 'count=50', 'iflag=direct']);
  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  assert.match(f.stdout, /count = 50, avg = [\d.]+ ms\n\s+msecs\s+: count\s+distribution\n\s+0 -> 1\s+: (\d+)/);
  const ev = await runRbtrace(['biolatency', '--events', '--disk', DISK, '-d', '0']);
  assert.equal(ev.code, 0, ev.stderr);
  assert.match(ev.stdout, /^TIME\(s\)\s+COMM\s+PID\s+DISK\s+T SECTOR\s+BYTES\s+LAT\(ms\)\n$/);
});

test('usage errors: one line, exit 2', async () => {
  for (const [args, msg] of [
    [['--disk', 'nosuchdisk0'], /--disk: no disk 'nosuchdisk0' in \/sys\/block/],
    [['--events', '-D'], /-D and -F split histograms/],
    [['--events', '-i', '1'], /-i does not apply with --events/],
  ] as const) {
    const f = await runRbtrace(['biolatency', ...args]);
    assert.equal(f.code, 2, f.stderr);
    assert.match(f.stderr, msg);
    assert.equal(f.stderr.trim().split('\n').length, 1, f.stderr);
  }
});
