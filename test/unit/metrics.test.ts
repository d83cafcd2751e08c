// The exporter's pure parts: exposition formats, escaping, log2 -> le
// buckets, the series limit, --listen and --tools parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeLabelValue, log2Buckets, render, wantsOpenMetrics, type MetricFamily } from '../../src/core/metrics/exposition.js';
import { SeriesLimiter, TopCounters } from '../../src/core/metrics/limit.js';
import { parseListen } from '../../src/core/metrics/server.js';
import { Gatherer, parseTools } from '../../src/tools/exporter.js';
import { execResult } from '../../src/tools/execsnoop/collect.js';
import { ListenerSeries } from '../../src/tools/exporter/listeners.js';
import { DEFAULT_NODE_FLAGS, wantedNodeFlags } from '../../src/tools/exporter/heap.js';
import type { ListenerRow } from '../../src/tools/synqueue/model.js';

test('label values: backslash, double quote and line feed are escaped, nothing else', () => {
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  assert.equal(escapeLabelValue('tab\there ünï'), 'tab\there ünï');
});

const families: MetricFamily[] = [
  { name: 'x_calls', type: 'counter', help: 'Calls.\nSecond line \\', samples: [{ labels: { comm: 'a"b' }, value: 3 }] },
  { name: 'x_len', type: 'gauge', help: 'Length.', samples: [{ labels: {}, value: 1.5 }] },
  { name: 'x_seconds', type: 'histogram', unit: 'seconds', help: 'Time.', histograms: [{ labels: { phase: 'mark' }, buckets: [{ le: 0.000002, count: 1 }], count: 2, sum: 0.25 }] },
];

test('text format 0.0.4: counters end in _total in TYPE and samples', () => {
  assert.equal(render(families, false), [
    '# HELP x_calls_total Calls.\\nSecond line \\\\',
    '# TYPE x_calls_total counter',
    'x_calls_total{comm="a\\"b"} 3',
    '# HELP x_len Length.',
    '# TYPE x_len gauge',
    'x_len 1.5',
    '# HELP x_seconds Time.',
    '# TYPE x_seconds histogram',
    'x_seconds_bucket{phase="mark",le="0.000002"} 1',
    'x_seconds_bucket{phase="mark",le="+Inf"} 2',
    'x_seconds_sum{phase="mark"} 0.25',
    'x_seconds_count{phase="mark"} 2',
    '',
  ].join('\n'));
});

test('OpenMetrics: family names without _total, UNIT, # EOF', () => {
  const text = render(families, true);
  assert.match(text, /^# TYPE x_calls counter\nx_calls_total\{comm="a\\"b"\} 3$/m);
  assert.match(text, /^# UNIT x_seconds seconds$/m);
  assert.ok(text.endsWith('# EOF\n'));
});

test('Accept: OpenMetrics only when asked for (and not with q=0)', () => {
  assert.equal(wantsOpenMetrics('application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'), true);
  assert.equal(wantsOpenMetrics('text/plain'), false);
  assert.equal(wantsOpenMetrics(undefined), false);
  assert.equal(wantsOpenMetrics('application/openmetrics-text;q=0'), false);
});

test('log2 slots become cumulative le buckets without losing a count', () => {
  // slot 0: 0-1 us, slot 1: 2-3 us, slot 3: 8-15 us
  const h = log2Buckets([2, 1, 0, 4], 1e-6);
  assert.deepEqual(h.buckets.map((b) => [b.le, b.count]), [[2e-6, 2], [4e-6, 3], [8e-6, 3], [16e-6, 7]]);
  assert.equal(h.count, 7);
  assert.equal(log2Buckets([], 1e-6, 3).buckets.length, 3);
  assert.equal(log2Buckets([0, 0, 0, 0, 0, 1], 1e-6, 3).buckets.length, 6);
});

test('series limit: the first N stay, newcomers are dropped and counted once, a vanished series frees its slot', () => {
  const l = new SeriesLimiter(2);
  const s = (v: string) => ({ labels: { k: v } });
  assert.deepEqual(l.filter([s('a'), s('b'), s('c')]).map((x) => x.labels.k), ['a', 'b']);
  assert.equal(l.dropped, 1);
  assert.deepEqual(l.filter([s('c'), s('a'), s('b')]).map((x) => x.labels.k), ['a', 'b'], 'admitted series keep their place');
  assert.equal(l.dropped, 1, 'c counted once');
  assert.deepEqual(l.filter([s('c'), s('b')]).map((x) => x.labels.k), ['c', 'b'], 'a went: c takes its slot');
  assert.equal(l.dropped, 1);
});

test('--listen and --tools', () => {
  assert.deepEqual(parseListen('127.0.0.1:9435'), { host: '127.0.0.1', port: 9435 });
  assert.deepEqual(parseListen('[::1]:80'), { host: '::1', port: 80 });
  assert.deepEqual(parseListen(':9435'), { host: '0.0.0.0', port: 9435 });
  for (const bad of ['9435', 'host', '1.2.3.4:0', '1.2.3.4:70000', '::1:80']) assert.throws(() => parseListen(bad), /--listen wants HOST:PORT/);
  assert.deepEqual(parseTools('synqueue, syscount,synqueue'), ['synqueue', 'syscount']);
  assert.throws(() => parseTools('mallocstat'), /not exported yet/);
  assert.throws(() => parseTools('nope'), /unknown tool 'nope'/);
  assert.throws(() => parseTools(','), /at least one/);
});

test('exec results: ok or the errno name', () => {
  assert.equal(execResult(0), 'ok');
  assert.equal(execResult(-2), 'ENOENT');
  assert.equal(execResult(-8), 'ENOEXEC');
});

test('a counter reading below the last shown value shows the last value; a vanished series starts again', () => {
  let values: [string, number][] = [['a', 5], ['b', 7]];
  const source = {
    tool: 't', path: 'p', lost: () => 0, close: () => {},
    collect: (): MetricFamily[] => [{ name: 'x', type: 'counter', help: 'h', samples: values.map(([k, v]) => ({ labels: { k }, value: v })) }],
  };
  const g = new Gatherer(() => [source], 10);
  const shown = () => Object.fromEntries(g.gather().find((f) => f.name === 'x')!.samples!.map((s) => [s.labels.k, s.value]));
  assert.deepEqual(shown(), { a: 5, b: 7 });
  values = [['a', 4], ['b', 8]];
  const t = Date.now();
  while (Date.now() - t < 250) { /* past the coalescing window */ }
  assert.deepEqual(shown(), { a: 5, b: 8 });
  values = [['b', 9]];
  while (Date.now() - t < 500) { /* again */ }
  assert.deepEqual(shown(), { b: 9 });
  values = [['a', 1], ['b', 9]];
  while (Date.now() - t < 750) { /* again */ }
  assert.deepEqual(shown(), { a: 1, b: 9 });
});

test('listener series: --max-series applied per listener before the nine families are built; drops counted once; a closed listener frees its slot', () => {
  const row = (port: number, o: Partial<ListenerRow> = {}): ListenerRow => ({
    addr: '127.0.0.1', port, family: 'ipv4', netns: 1, pid: null, comm: null, container: null,
    accept_queue: 1, accept_queue_max: 2, accept_limit: 8, syn_queue: 0, syn_queue_max: 0, syn_limit: 16,
    overflows: 3, drops: 3, syncookies: 0, synack_retrans: 0, enqueued: 0, ...o,
  });
  const ls = new ListenerSeries(2);
  let fams = ls.update([row(1), row(2), row(3)]);
  assert.equal(fams.length, 9);
  for (const f of fams) {
    assert.deepEqual(f.samples!.map((s) => s.labels.port), ['1', '2'], f.name);
    assert.deepEqual(f.limited, { dropped: 1 });
  }
  const overflows = () => Object.fromEntries(fams[0].samples!.map((s) => [s.labels.port, s.value]));
  assert.equal(fams[0].samples![0].text, '{addr="127.0.0.1",port="1",netns="1"}', 'label text rendered once, ready for the exposition');
  // Two sockets with the same labels (SO_REUSEPORT) add up; counters accumulate.
  fams = ls.update([row(1), row(1, { accept_limit: 4 }), row(2), row(3)]);
  assert.deepEqual(overflows(), { 1: 9, 2: 6 });
  assert.equal(fams.find((f) => f.name === 'rbtrace_listen_accept_queue_limit')!.samples![0].value, 12);
  assert.equal(ls.dropped, 1, 'port 3 counted once while it exists');
  // Port 1 closes: port 3 takes its slot, with what it counted since it appeared.
  fams = ls.update([row(2), row(3)]);
  assert.deepEqual(overflows(), { 2: 9, 3: 9 });
  assert.equal(ls.size, 2);
  const text = render(fams, false);
  assert.match(text, /^rbtrace_listen_overflows_total\{addr="127\.0\.0\.1",port="3",netns="1"\} 9$/m);
});

test('the exporter restarts under bounded V8 heap flags unless told otherwise', () => {
  assert.deepEqual(wantedNodeFlags({}), DEFAULT_NODE_FLAGS);
  assert.ok(DEFAULT_NODE_FLAGS.some((f) => f.startsWith('--max-semi-space-size=')));
  assert.deepEqual(wantedNodeFlags({ RBTRACE_EXPORTER_NODE_FLAGS: '' }), []);
  assert.deepEqual(wantedNodeFlags({ RBTRACE_EXPORTER_NODE_FLAGS: ' --max-semi-space-size=4  --max-old-space-size=64 ' }), ['--max-semi-space-size=4', '--max-old-space-size=64']);
});

test('TopCounters: the largest take the room (limit - 1), keep it, the rest summed in one series that never goes back', () => {
  const t = new TopCounters(3);
  const s = (key: string, value: number) => ({ key, labels: { method: key }, value });
  const rest = { method: 'other' };
  const show = (all: ReturnType<typeof s>[]) => Object.fromEntries(t.select(all, rest).map((x) => [x.labels.method, x.value]));
  assert.deepEqual(show([s('a', 1)]), { a: 1 });
  assert.equal(t.dropped, 0);
  // b and c arrive: one place left, the larger (c) takes it, b is summed.
  assert.deepEqual(show([s('a', 1), s('b', 5), s('c', 9)]), { a: 1, c: 9, other: 5 });
  assert.equal(t.dropped, 1);
  // b overtakes both: it stays in other (a shown series never moves, so other never shrinks).
  assert.deepEqual(show([s('a', 2), s('b', 50), s('c', 9), s('d', 1)]), { a: 2, c: 9, other: 51 });
  assert.equal(t.dropped, 2);
  // A limit of 1: everything in other.
  const one = new TopCounters(1);
  assert.deepEqual(one.select([s('a', 4), s('b', 3)], rest).map((x) => [x.labels.method, x.value]), [['other', 7]]);
});
