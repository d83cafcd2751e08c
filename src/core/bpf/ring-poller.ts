// One wait for every ring buffer of the process, so the event loop runs only
// when a ring has records.
//
// A ring buffer's map fd is readable while it holds records (the kernel's
// ringbuf poll), so one poll(2) over all of them, on a libuv worker thread
// (koffi's async call), wakes the loop the moment a record lands and never
// while none does. A timer per ring woke the loop 100 times a second whether
// or not anything came: measured, 1-3 % of a core for a tool that saw
// nothing (profile -p of a sleeping process, execsnoop on a quiet host).
//
// A wake that found records switches to a timer: every pollMs all rings are
// read on the main thread (ring_buffer__consume makes no syscall when a ring
// is empty), and only after STREAM_IDLE_MS without a record does the wait
// come back. A round trip through the worker costs about twice a timer tick
// (measured: 96 us of CPU against 50), so records that come every few tens
// of ms are cheaper read by the timer than woken for one by one (measured on
// the exporter under load: 1.39 % of a core when each batch went back to the
// wait, 1.27 % when the first empty read did, 1.18 % for a timer per ring).
// An eventfd in the set ends a wait at once when a ring is added or removed;
// a wait in flight keeps Node alive, so the last ring's removal must end it.
import { eventFd, eventFdDrain, eventFdSignal, pollAsync } from '../ffi/libc.js';

export interface PolledRing {
  /** The ring buffer map's fd. */
  readonly fd: number;
  /** Hand every pending record to its handler; returns how many. Throws what a handler threw. */
  consume(): number;
}

interface Entry {
  pollMs: number;
  onError: (err: unknown) => void;
}

const POLLIN = 1;
const POLLFD_BYTES = 8;
/** After a failed poll (not expected: EINTR at most), the wait starts again this much later, not in a spin. */
const RETRY_MS = 10;
/** Reading by timer goes on until no ring has had a record for this long. */
const STREAM_IDLE_MS = 250;

class RingPoller {
  private readonly rings = new Map<PolledRing, Entry>();
  private wakeFd = -1;
  private waiting = false;
  private next?: NodeJS.Timeout;
  private fds = Buffer.alloc(0);
  private polled: PolledRing[] = [];
  private lastRecordAt = 0;

  add(ring: PolledRing, pollMs: number, onError: (err: unknown) => void): void {
    if (this.wakeFd < 0) {
      this.wakeFd = eventFd();
      if (this.wakeFd < 0) throw new Error(`eventfd failed (${-this.wakeFd})`);
    }
    this.rings.set(ring, { pollMs, onError });
    this.restart();
  }

  remove(ring: PolledRing): void {
    if (!this.rings.delete(ring)) return;
    this.restart();
  }

  /** The set changed: a wait in flight ends (and starts again with the new set), a pending one starts now. */
  private restart(): void {
    if (this.waiting) eventFdSignal(this.wakeFd);
    else {
      clearTimeout(this.next);
      this.next = undefined;
      this.wait();
    }
  }

  private wait(): void {
    if (this.waiting || this.next || this.rings.size === 0) return;
    this.polled = [...this.rings.keys()];
    // The buffer is kept alive in `this.fds` while the worker writes into it.
    this.fds = Buffer.alloc((this.polled.length + 1) * POLLFD_BYTES);
    [this.wakeFd, ...this.polled.map((r) => r.fd)].forEach((fd, i) => {
      this.fds.writeInt32LE(fd, i * POLLFD_BYTES);
      this.fds.writeInt16LE(POLLIN, i * POLLFD_BYTES + 4);
    });
    this.waiting = true;
    pollAsync(this.fds, -1, (result) => this.woken(result));
  }

  private woken(result: number): void {
    this.waiting = false;
    if (result < 0) return this.later(RETRY_MS, () => this.wait());
    if (this.fds.readInt16LE(6) !== 0) eventFdDrain(this.wakeFd);
    const readable = this.polled.filter((_, i) => this.fds.readInt16LE((i + 1) * POLLFD_BYTES + 6) !== 0);
    if (this.read(readable) > 0) this.later(this.batchMs(), () => this.tick());
    else this.wait();
  }

  /** Streaming: read every ring each batchMs; back to the wait once none has had a record for STREAM_IDLE_MS. */
  private tick(): void {
    this.read([...this.rings.keys()]);
    if (performance.now() - this.lastRecordAt < STREAM_IDLE_MS) this.later(this.batchMs(), () => this.tick());
    else this.wait();
  }

  /** Consume these rings; how many records they held. A ring's handler error goes to its own onError. */
  private read(rings: PolledRing[]): number {
    let records = 0;
    for (const ring of rings) {
      const entry = this.rings.get(ring);
      if (!entry) continue;
      try {
        records += ring.consume();
      } catch (err) {
        records++;
        entry.onError(err);
      }
    }
    if (records > 0) this.lastRecordAt = performance.now();
    return records;
  }

  private batchMs(): number {
    return Math.min(...[...this.rings.values()].map((e) => e.pollMs));
  }

  private later(ms: number, fn: () => void): void {
    if (this.rings.size === 0) return;
    this.next = setTimeout(() => {
      this.next = undefined;
      fn();
    }, ms);
  }
}

/** The process's one poller (the exporter's sources share it). */
export const ringPoller = new RingPoller();
