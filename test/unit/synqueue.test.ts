// synqueue's pure parts: address formatting, limits, and how a report row is
// put together from snapshots and probe counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddr, formatListener, parsePorts, synLimit, buildRow } from '../../src/tools/synqueue/model.js';
import { formatNetstat } from '../../src/tools/synqueue/views.js';
import { readNetCounters } from '../../src/core/linux/netstat.js';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('addresses', () => {
  assert.equal(formatAddr(2, [127, 0, 0, 1, 9, 9]), '127.0.0.1');
  const v6 = new Array(16).fill(0);
  assert.equal(formatAddr(10, v6), '::');
  v6[15] = 1;
  assert.equal(formatAddr(10, v6), '::1');
  assert.equal(formatAddr(10, [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2]), 'fe80::1:0:0:2');
  assert.equal(formatListener('0.0.0.0', 80, 2), '*:80');
  assert.equal(formatListener('::1', 443, 10), '[::1]:443');
});

test('--port', () => {
  assert.deepEqual(parsePorts('80,443'), [80, 443]);
  assert.throws(() => parsePorts('0'), /--port wants port numbers/);
  assert.throws(() => parsePorts('80,x'), /--port/);
  assert.throws(() => parsePorts('65536'), /--port/);
});

test('SYN queue limit follows tcp_syncookies', () => {
  assert.equal(synLimit(4096, 1, 2048), 4096);
  assert.equal(synLimit(4096, 0, 2048), 1536);
  assert.equal(synLimit(100, 0, 2048), 100);
  assert.equal(synLimit(100, 2, 2048), 0);
});

const snap = (o: Partial<Parameters<typeof buildRow>[0]> = {}) => ({
  sk: 1, ino: 1, netns: 1, family: 2, addr: '127.0.0.1', port: 8080, acceptQueue: 0, acceptLimit: 8, synQueue: 0, skDrops: 0, ...o,
});
const counts = (o = {}) => ({ enqueues: 0, overflows: 0, drops: 0, syncookies: 0, synackRetrans: 0, syns: 0, freed: 0, acceptMax: 0, synMax: 0, ...o });
const sys = { syncookies: 1, maxSynBacklog: 2048 };

test('a full queue: sk_drops minus kfree_skb discards are listen drops, counted as overflows without per-SYN probes', () => {
  const row = buildRow(snap({ acceptQueue: 9, skDrops: 140 }), snap({ skDrops: 100 }), counts({ enqueues: 9, acceptMax: 9, overflows: 4, freed: 4 }), false, sys);
  assert.equal(row.accept_queue_max, 9);
  assert.equal(row.drops, 36);
  assert.equal(row.overflows, 36);
  assert.equal(row.overflows_inferred, true);
  assert.equal(row.syncookies, null);
});

test('queue never full: drops are not called overflows; per-SYN paths count them one by one', () => {
  const quiet = buildRow(snap({ skDrops: 7 }), snap({ skDrops: 2 }), counts({ freed: 2, drops: 2 }), false, sys);
  assert.deepEqual([quiet.drops, quiet.overflows, quiet.overflows_inferred], [3, 0, undefined]);
  const perSyn = buildRow(snap({ acceptQueue: 9, skDrops: 20 }), snap(), counts({ overflows: 20, syncookies: 3, acceptMax: 9 }), true, sys);
  assert.deepEqual([perSyn.drops, perSyn.overflows, perSyn.syncookies], [20, 20, 3]);
  assert.equal(perSyn.overflows_inferred, undefined);
});

test('max includes the snapshots at both ends of the interval', () => {
  const row = buildRow(snap({ acceptQueue: 2, synQueue: 1 }), snap({ acceptQueue: 5, synQueue: 7 }), counts({ acceptMax: 3, synMax: 2 }), false, sys);
  assert.equal(row.accept_queue_max, 5);
  assert.equal(row.syn_queue_max, 7);
});

test('netstat parsing and summary', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sq-'));
  const f = join(dir, 'netstat');
  writeFileSync(f, 'TcpExt: SyncookiesSent ListenOverflows\nTcpExt: 3 17\nIpExt: InNoRoutes\nIpExt: 5\n');
  const m = readNetCounters(f);
  assert.equal(m.get('TcpExt.ListenOverflows'), 17);
  assert.equal(m.get('IpExt.InNoRoutes'), 5);
  assert.equal(formatNetstat({ ListenOverflows: 0 }), 'no listen overflows, drops or SYN cookies');
  assert.equal(formatNetstat({ ListenOverflows: 2, ListenDrops: 2, SyncookiesSent: 0 }), 'ListenOverflows +2  ListenDrops +2');
});

test('without an enqueue probe (tracepoint paths before 6.2): enqueued is null, the snapshots still give the max', () => {
  const blind = buildRow(snap({ acceptQueue: 9, skDrops: 31 }), snap(), counts(), false, sys, false);
  assert.equal(blind.enqueued, null);
  assert.equal(blind.accept_queue_max, 9);
  assert.deepEqual([blind.drops, blind.overflows, blind.overflows_inferred], [31, 31, true]);
  assert.equal(buildRow(snap(), snap(), counts({ enqueues: 2 }), false, sys).enqueued, 2, 'seen by default');
});

test('containers from cgroup paths', async () => {
  const { containerOf, cgroupLayout, cgroupUnder } = await import('../../src/core/linux/cgroup.js');
  const id = 'a'.repeat(64);
  assert.equal(containerOf(`/system.slice/docker-${id}.scope`), id);
  assert.equal(containerOf(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234abcd_5678_90ab_cdef_1234567890ab.slice/cri-containerd-${id}.scope`), id);
  assert.equal(containerOf(`/machine.slice/libpod-${id}.scope/container`), id);
  assert.equal(containerOf(`/docker/${id}`), id);
  assert.equal(containerOf('/kubepods/besteffort/pod1234abcd-5678-90ab-cdef-1234567890ab'), 'pod1234abcd-5678-90ab-cdef-1234567890ab');
  assert.equal(containerOf('/user.slice/user-0.slice/session-1.scope'), null);
  assert.equal(containerOf(undefined), null);
  assert.ok(cgroupUnder('/a/b/c', '/a/b') && cgroupUnder('/a/b', '/a/b') && !cgroupUnder('/a/bc', '/a/b') && cgroupUnder('/x', '/'));
  const hybrid = '30 1 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n';
  assert.deepEqual(cgroupLayout(hybrid), { kind: 'hybrid', v2Mount: '/sys/fs/cgroup/unified', v1Mounts: ['/sys/fs/cgroup/memory'] });
  assert.equal(cgroupLayout('31 1 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n').kind, 'v2');
  assert.equal(cgroupLayout('').kind, 'none');
});

test('cgroup fields and columns of per-process rows', async () => {
  const { cgroupFields, cgroupColumns, cgroupSuffix, CgroupPaths } = await import('../../src/core/linux/cgroup.js');
  const id = 'b'.repeat(64);
  const inCtr = cgroupFields(`/system.slice/docker-${id}.scope`);
  assert.deepEqual(inCtr, { cgroup: `/system.slice/docker-${id}.scope`, container: id });
  assert.deepEqual(cgroupFields('/user.slice'), { cgroup: '/user.slice', container: null });
  assert.deepEqual(cgroupFields(undefined), {});
  // CONTAINER only when a row is in one; CGROUP only with --cgroup.
  assert.deepEqual(cgroupColumns([cgroupFields('/user.slice'), {}], { cgroup: false }).headers, []);
  const both = cgroupColumns([inCtr, cgroupFields('/user.slice'), {}], { cgroup: true });
  assert.deepEqual(both.headers, ['CGROUP', 'CONTAINER']);
  assert.deepEqual(both.cells(inCtr), [`/system.slice/docker-${id}.scope`, 'b'.repeat(12)]);
  assert.deepEqual(both.cells({}), ['-', '-']);
  assert.equal(cgroupSuffix({ cgroup: '/a\x1b[31m', container: null }, true), ' cgroup /a\\x1b[31m');
  assert.equal(cgroupSuffix(inCtr, false), ` container ${'b'.repeat(12)}`);
  // Ids are directory inodes under the mount: a tree made here.
  const { mkdtempSync, mkdirSync, statSync } = await import('node:fs');
  const root = mkdtempSync('/tmp/rbtrace-cgpaths-');
  mkdirSync(`${root}/a/b`, { recursive: true });
  const paths = new CgroupPaths(root, 0);
  assert.equal(paths.pathOf(statSync(`${root}/a/b`).ino), '/a/b');
  assert.equal(paths.pathOf(statSync(root).ino), '/');
  mkdirSync(`${root}/late`);
  assert.equal(paths.pathOf(statSync(`${root}/late`).ino), '/late', 'a directory made since: found by walking again');
  assert.equal(paths.pathOf(0), undefined);
});

test('top listeners: overflows, drops, then fill; partial selection equals a full sort', async () => {
  const { topRows, compareByImportance } = await import('../../src/tools/synqueue/model.js');
  const rows = Array.from({ length: 500 }, (_, i) => ({
    ...buildRow(snap({ port: 1000 + i, acceptQueue: (i * 7) % 13, acceptLimit: 10 }), undefined, counts({ overflows: i % 37 === 0 ? i : 0 }), true, sys),
  }));
  const full = [...rows].sort(compareByImportance);
  assert.deepEqual(topRows(rows, 20).map((r) => r.port), full.slice(0, 20).map((r) => r.port));
  assert.equal(topRows(rows, 20)[0].overflows, 481);
  assert.deepEqual(topRows(rows, 0), []);
  assert.equal(topRows(rows, 1000).length, 500);
});

test('the table escapes names from the system and marks namespaces only when several show', async () => {
  const { renderTableReport } = await import('../../src/tools/synqueue/views.js');
  const { Chalk } = await import('chalk');
  const ctx = { color: new Chalk({ level: 0 }) };
  const row = (netns: number, comm: string) => ({ ...buildRow(snap({ netns }), undefined, counts(), true, sys, true, { pid: 42, comm }) });
  const rep = (rows: ReturnType<typeof row>[]) => ({ time: '', attach: 'x', listeners: rows, netstat: {}, namespaces: [
    { netns: 1, name: 'blue\u001b[31m', pid: 1, listeners: 1, netstat: {} }, { netns: 2, name: null, pid: 2, listeners: 1, netstat: {} }] });
  const one = renderTableReport(ctx, rep([row(1, 'evil\u001b]0;PWN\u0007\u202e')]), true);
  assert.ok(!/[\u001b\u0007\u202e]/.test(one), one);
  assert.match(one, /evil\\x1b\]0;PWN\\x07\\u202e/);
  assert.match(one, /^LISTEN\s+PID\s+COMM/m);
  const two = renderTableReport(ctx, rep([row(1, 'a'), row(2, 'b')]), true);
  assert.match(two, /^NETNS\s+LISTEN/m);
  assert.match(two, /^blue\\x1b\[31m\s+127\.0\.0\.1:8080/m);
  const cut = renderTableReport(ctx, rep([row(1, 'a'), row(2, 'b')]), true, 1);
  assert.match(cut, /\(1 more listeners: --all shows every one/);
});

test('sameRow compares every field of a row: changing any one makes it a different row', async () => {
  const { sameRow } = await import('../../src/tools/synqueue/model.js');
  const base = buildRow(snap({ acceptQueue: 3, acceptLimit: 10 }), undefined, counts({ overflows: 2 }), true, sys, true, { pid: 42, comm: 'a' }, 'c1');
  assert.ok(sameRow(base, { ...base }));
  const other: Record<string, unknown> = { addr: '10.0.0.1', port: 1, family: 'ipv6', netns: 9, pid: 43, comm: 'b', container: null, overflows_inferred: true };
  for (const key of [...Object.keys(base), 'overflows_inferred']) {
    const changed = { ...base, [key]: key in other ? other[key] : (base as unknown as Record<string, number>)[key] + 1 } as typeof base;
    assert.equal(sameRow(base, changed), false, key);
  }
});

test('the JSON record is ndjson(report), byte for byte, with rows shown again taking their saved text', async () => {
  const { reportJsonParts } = await import('../../src/tools/synqueue/views.js');
  const { ndjson } = await import('../../src/core/output/json.js');
  const rows = Array.from({ length: 1203 }, (_, i) => buildRow(snap({ port: 1000 + i, acceptQueue: i % 5 }), undefined, counts({ overflows: i % 3 }), i % 2 === 0, sys,
    true, i % 7 ? { pid: i, comm: i % 11 ? 'srv' : 'evil\u2028"\u2029\u001b' } : null, i % 13 ? null : 'docker-\u2028'));
  const report = { time: 't', attach: 'fentry', listeners: rows, netstat: { ListenOverflows: 1 }, namespaces: [] };
  const texts = new WeakMap();
  assert.equal(Buffer.concat(reportJsonParts(report, texts)).toString(), ndjson(report));
  // Shown again: every text comes from the cache (poisoned to prove it), and the result still parses.
  for (const r of rows.slice(0, 3)) texts.set(r, Buffer.from('{"cached":true}'));
  const again = JSON.parse(Buffer.concat(reportJsonParts(report, texts)).toString());
  assert.deepEqual(again.listeners.slice(0, 4).map((r: { cached?: boolean }) => r.cached ?? false), [true, true, true, false]);
  assert.equal(Buffer.concat(reportJsonParts({ ...report, listeners: [] }, texts)).toString(), ndjson({ ...report, listeners: [] }));

  // Chunks kept between reports: the same row objects give the same bytes;
  // a row replaced (a listener whose figures changed), or rows gone, show.
  const fresh = new WeakMap();
  const chunks: import('../../src/tools/synqueue/views.js').JsonChunk[] = [];
  assert.equal(Buffer.concat(reportJsonParts(report, fresh, chunks)).toString(), ndjson(report));
  assert.equal(chunks.length, 3);
  assert.equal(Buffer.concat(reportJsonParts(report, fresh, chunks)).toString(), ndjson(report));
  const changed = [...rows];
  changed[700] = { ...rows[700], accept_queue: 77 };
  const r2 = { ...report, listeners: changed };
  assert.equal(Buffer.concat(reportJsonParts(r2, fresh, chunks)).toString(), ndjson(r2));
  const fewer = { ...report, listeners: changed.slice(0, 400) };
  assert.equal(Buffer.concat(reportJsonParts(fewer, fresh, chunks)).toString(), ndjson(fewer));
  assert.equal(chunks.length, 1);
  const shifted = { ...report, listeners: changed.slice(1) };
  assert.equal(Buffer.concat(reportJsonParts(shifted, fresh, chunks)).toString(), ndjson(shifted));
});

test('quietRowHolds says true only when buildRow would give the same row (many inputs, both kinds of path)', async () => {
  const { quietRowHolds, sameRow, QUIET } = await import('../../src/tools/synqueue/model.js');
  let rnd = 12345; // xorshift32: the same inputs every run
  const r = (n: number) => {
    rnd ^= rnd << 13;
    rnd ^= rnd >>> 17;
    rnd ^= rnd << 5;
    return (rnd >>> 0) % n;
  };
  const owners = [null, { pid: 7, comm: 'a' }, { pid: 8, comm: 'a' }];
  let held = 0;
  for (let i = 0; i < 20000; i++) {
    const perSyn = r(2) === 0, sees = r(2) === 0;
    const s1 = { syncookies: r(3), maxSynBacklog: 64 + r(3) * 64 };
    const s2 = r(4) ? s1 : { syncookies: r(3), maxSynBacklog: 64 + r(3) * 64 };
    const o1 = owners[r(3)], o2 = r(4) ? o1 : owners[r(3)];
    const c1 = r(3) ? null : 'ctr', c2 = r(4) ? c1 : 'other';
    const now1 = snap({ acceptQueue: r(3), synQueue: r(2), skDrops: r(2), acceptLimit: 1 + r(2), port: 80 + r(2) });
    const prev1 = r(5) ? (r(2) ? { acceptQueue: now1.acceptQueue, synQueue: now1.synQueue, skDrops: now1.skDrops } : { acceptQueue: r(3), synQueue: r(2), skDrops: r(2) }) : undefined;
    const cnt1 = r(2) ? QUIET : counts({ overflows: r(2), acceptMax: r(4), syncookies: r(2), enqueues: r(2), freed: r(2) });
    const old = buildRow(now1, prev1, cnt1, perSyn, s1, sees, o1, c1);
    const now2 = r(3) ? { ...now1 } : snap({ acceptQueue: r(3), synQueue: r(2), skDrops: r(2), acceptLimit: 1 + r(2), port: now1.port });
    const prev2 = r(5) ? { acceptQueue: now1.acceptQueue, synQueue: now1.synQueue, skDrops: now1.skDrops } : undefined;
    const cnt2 = r(3) ? QUIET : counts({ overflows: r(2) });
    const fresh = buildRow(now2, prev2, cnt2, perSyn, s2, sees, o2, c2);
    const holds = quietRowHolds(now2, prev2, cnt2, old, perSyn, s2, sees, o2, c2);
    if (holds) {
      held++;
      assert.ok(sameRow(old, fresh), `held but differs: ${JSON.stringify({ old, fresh })}`);
    }
  }
  assert.ok(held > 1000, `the quiet case came up (${held} times)`);
});
