// tcplife's and tcpretrans's pure parts: addresses as ss prints them, bcc's
// KB rounding and columns, traced names escaped, -c's order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AF_INET, AF_INET6, formatAddr, formatEndpoint, tcpStateName } from '../../src/core/linux/inet.js';
import { connectionCells, connectionPrinter, connectionRecord, type LineMode } from '../../src/tools/tcplife/views.js';
import { flowTable } from '../../src/tools/tcpretrans/views.js';
import type { Connection } from '../../src/tools/tcplife/collect.js';
import type { FlowRow } from '../../src/tools/tcpretrans/collect.js';

test('addresses and endpoints as ss prints them', () => {
  assert.equal(formatAddr(AF_INET, [127, 0, 0, 1]), '127.0.0.1');
  const v6 = new Array(16).fill(0);
  v6[15] = 1;
  assert.equal(formatAddr(AF_INET6, v6), '::1');
  assert.equal(formatAddr(AF_INET6, [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x0a]), '2001:db8::1:0:0:a');
  assert.equal(formatEndpoint('::1', 443), '[::1]:443');
  assert.equal(formatEndpoint('10.0.0.1', 80), '10.0.0.1:80');
  assert.deepEqual([1, 2, 7, 12, 99].map(tcpStateName), ['ESTABLISHED', 'SYN_SENT', 'CLOSE', 'NEW_SYN_RECV', 'STATE_99']);
});

const conn: Connection = {
  ts_ns: 0, pid: 42, comm: 'evil\x1b[31mname', owner: 'connect', family: 'ipv4', laddr: '127.0.0.1', lport: 5000,
  raddr: '127.0.0.1', rport: 80, tx_bytes: 2047, rx_bytes: 1024, duration_ns: 1_234_567, closed_from: 'FIN_WAIT2', netns: 4026531840, cgroup_id: 1,
};
const mode: LineMode = { time: false, timestamp: false, wide: true, ipv4Only: true, cgroupHeaders: [] };

test('tcplife line: bcc KB (rounded down), ms with 2 decimals, comm escaped', () => {
  const p = connectionPrinter(mode);
  assert.match(p.header(), /^\s*PID COMM\s+LADDR\s+LPORT RADDR\s+RPORT\s+TX_KB\s+RX_KB\s+MS\s+NETNS\n$/);
  const line = p.row(connectionCells(conn, {}, mode, []));
  assert.ok(!line.includes('\x1b'), line);
  assert.match(line, /evil\\x1b\[31mname/);
  assert.match(line, / 1 +1 +1\.23 4026531840\n$/);
  // The JSON record keeps the exact bytes and the raw name (JSON escapes it).
  const rec = connectionRecord(conn, new Date(0), { cgroup: '/', container: null }) as Record<string, unknown>;
  assert.deepEqual([rec.tx_bytes, rec.rx_bytes, rec.duration_ns, rec.comm], [2047, 1024, 1_234_567, conn.comm]);
});

test('tcpretrans -c: most retransmits first, TLPS with -l', () => {
  const row = (lport: number, retrans: number, tlp: number): FlowRow => ({
    netns: 1, family: 'ipv4', laddr: '10.0.0.1', lport, raddr: '10.0.0.2', rport: 443, retrans, segs: retrans, failed: 0, synack: 0, tlp,
  });
  const text = flowTable([row(1000, 2, 0), row(2000, 9, 3)], true);
  const lines = text.trim().split('\n');
  assert.match(lines[0], /LADDR:LPORT\s+RADDR:RPORT\s+RETRANSMITS\s+TLPS\s+NETNS/);
  assert.match(lines[1], /10\.0\.0\.1:2000\s+<->\s+10\.0\.0\.2:443\s+9\s+3\s+1/);
  assert.match(lines[2], /10\.0\.0\.1:1000/);
});
