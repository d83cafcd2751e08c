// The process's one timer over every ring buffer (src/core/bpf/ring-poller.ts),
// with counters standing in for rings. What it promises: a stream is read in
// batches of pollMs; once nothing comes the reading slows to IDLE_MAX_MS (an
// idle tool wakes about 10 times a second, not 100 per ring); the first record
// after a quiet spell waits at most IDLE_MAX_MS; a throwing ring does not stop
// the others; once the last ring is gone nothing holds Node's event loop
// (else this file's process would never end and the runner would time it out).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { IDLE_MAX_MS, ringPoller, type PolledRing } from '../../src/core/bpf/ring-poller.js';

class FakeRing implements PolledRing {
  pending = 0;
  reads = 0;
  /** When each pending record was taken. */
  taken: number[] = [];
  failWith?: Error;
  consume(): number {
    this.reads++;
    const n = this.pending;
    this.pending = 0;
    if (n > 0) this.taken.push(performance.now());
    if (n > 0 && this.failWith) throw this.failWith;
    return n;
  }
}

test('a stream every ms at batch 20 ms: read every ~20 ms; idle: about 10 reads a second; a record after idle waits <= IDLE_MAX_MS', async () => {
  const ring = new FakeRing();
  ringPoller.add(ring, 20, (err) => assert.fail(String(err)));
  const start = performance.now();
  while (performance.now() - start < 400) {
    ring.pending++;
    await sleep(1);
  }
  // 400 ms at one read per 20 ms: about 20 reads that found records (timers run late, not early).
  assert.ok(ring.taken.length >= 8 && ring.taken.length <= 22, `${ring.taken.length} batches in 400 ms`);
  await sleep(1000); // the stream's 250 ms, then the slowing down
  ring.reads = 0;
  await sleep(1000);
  assert.ok(ring.reads >= 5 && ring.reads <= 12, `${ring.reads} reads in an idle second (IDLE_MAX_MS ${IDLE_MAX_MS})`);
  ring.taken = [];
  const sent = performance.now();
  ring.pending = 1;
  await sleep(IDLE_MAX_MS + 60);
  assert.equal(ring.taken.length, 1);
  assert.ok(ring.taken[0] - sent <= IDLE_MAX_MS + 30, `read ${(ring.taken[0] - sent).toFixed(1)} ms after it came`);
  ringPoller.remove(ring);
});

test('a ring whose handler throws reports to its own onError; the other ring is still read', async () => {
  const bad = new FakeRing();
  const good = new FakeRing();
  bad.failWith = new Error('bad record');
  const errors: unknown[] = [];
  ringPoller.add(bad, 10, (err) => errors.push(err));
  ringPoller.add(good, 10, (err) => assert.fail(String(err)));
  bad.pending = 1;
  good.pending = 1;
  await sleep(100);
  assert.deepEqual(errors.map((e) => (e as Error).message), ['bad record']);
  assert.equal(good.taken.length, 1);
  good.pending = 1;
  await sleep(150);
  assert.equal(good.taken.length, 2);
  ringPoller.remove(bad);
  ringPoller.remove(good);
});
