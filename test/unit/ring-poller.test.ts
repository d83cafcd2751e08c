// The process's one wait for ring buffers (src/core/bpf/ring-poller.ts), with
// eventfds standing in for ring buffer maps: poll(2) finds both readable
// while they hold something. What it promises: nothing runs while nothing
// comes; a record after an idle stretch is read at once; a stream is read in
// batches, not per record, and the wait comes back once it stops; a throwing ring does not stop the others; and once
// the last ring is gone nothing holds Node's event loop (else this file's
// process would never end and the runner would time it out).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ringPoller, type PolledRing } from '../../src/core/bpf/ring-poller.js';
import { eventFd, eventFdDrain, eventFdSignal } from '../../src/core/ffi/libc.js';

class FakeRing implements PolledRing {
  readonly fd = eventFd();
  consumed: number[] = [];
  failWith?: Error;
  /** Records = the eventfd's counter; only reads that found some are noted. */
  consume(): number {
    const records = eventFdDrain(this.fd);
    if (records === 0) return 0;
    this.consumed.push(performance.now());
    if (this.failWith) throw this.failWith;
    return records;
  }
  close(): void {
    closeSync(this.fd);
  }
}

test('idle: never consumed; a record after 300 ms idle is read within 50 ms; a stream every ms for 400 ms at batch 100 ms: at most 6 reads', async () => {
  const ring = new FakeRing();
  ringPoller.add(ring, 100, (err) => assert.fail(String(err)));
  await sleep(300);
  assert.equal(ring.consumed.length, 0, 'consumed while nothing came');
  const sent = performance.now();
  eventFdSignal(ring.fd);
  await sleep(60);
  assert.equal(ring.consumed.length, 1);
  assert.ok(ring.consumed[0] - sent < 50, `read ${(ring.consumed[0] - sent).toFixed(1)} ms after it came`);
  await sleep(150); // past the batch gap
  ring.consumed = [];
  const start = performance.now();
  while (performance.now() - start < 400) {
    eventFdSignal(ring.fd);
    await sleep(1);
  }
  await sleep(150);
  // 400 ms of records at one read per 100 ms: 4 or 5, plus the last batch.
  assert.ok(ring.consumed.length >= 3 && ring.consumed.length <= 6, `${ring.consumed.length} reads`);
  // The stream has stopped: after the poller's 250 ms of reading by timer, the next record after a pause is read at once again.
  await sleep(400);
  ring.consumed = [];
  const again = performance.now();
  eventFdSignal(ring.fd);
  await sleep(60);
  assert.equal(ring.consumed.length, 1);
  assert.ok(ring.consumed[0] - again < 50, `read ${(ring.consumed[0] - again).toFixed(1)} ms after it came`);
  ringPoller.remove(ring);
  ring.close();
});

test('a ring whose handler throws reports to its own onError; the other ring is still read', async () => {
  const bad = new FakeRing();
  const good = new FakeRing();
  bad.failWith = new Error('bad record');
  const errors: unknown[] = [];
  ringPoller.add(bad, 10, (err) => errors.push(err));
  ringPoller.add(good, 10, (err) => assert.fail(String(err)));
  eventFdSignal(bad.fd);
  eventFdSignal(good.fd);
  await sleep(100);
  assert.deepEqual(errors.map((e) => (e as Error).message), ['bad record']);
  assert.equal(good.consumed.length, 1);
  eventFdSignal(good.fd);
  await sleep(100);
  assert.equal(good.consumed.length, 2);
  ringPoller.remove(bad);
  ringPoller.remove(good);
  bad.close();
  good.close();
});
