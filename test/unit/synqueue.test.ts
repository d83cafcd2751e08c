// synqueue's pure parts: address formatting, limits, and how a report row is
// put together from snapshots and probe counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddr, formatListener, parsePorts, synLimit, buildRow, formatNetstat } from '../../src/tools/synqueue.js';
import { readNetCounters } from '../../src/core/netstat.js';
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
