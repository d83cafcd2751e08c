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
// A wake that found records starts the next wait only after the rings'
// pollMs, so a steady stream is still read in batches (one wake per pollMs at
// most, as the timers did), not one wake per record. An eventfd in the set
// ends a wait at once when a ring is added or removed; a wait in flight keeps
// Node alive, so the last ring's removal must end it.
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

class RingPoller {
  private readonly rings = new Map<PolledRing, Entry>();
  private wakeFd = -1;
  private waiting = false;
  private next?: NodeJS.Timeout;
  private fds = Buffer.alloc(0);
  private polled: PolledRing[] = [];

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
    if (result < 0) return this.after(RETRY_MS);
    if (this.fds.readInt16LE(6) !== 0) eventFdDrain(this.wakeFd);
    let batchMs = Infinity;
    this.polled.forEach((ring, i) => {
      const entry = this.rings.get(ring);
      if (!entry || this.fds.readInt16LE((i + 1) * POLLFD_BYTES + 6) === 0) return;
      batchMs = Math.min(batchMs, entry.pollMs);
      try {
        ring.consume();
      } catch (err) {
        entry.onError(err);
      }
    });
    this.after(batchMs === Infinity ? 0 : batchMs);
  }

  private after(ms: number): void {
    if (this.rings.size === 0) return;
    if (ms === 0) return this.wait();
    this.next = setTimeout(() => {
      this.next = undefined;
      this.wait();
    }, ms);
  }
}

/** The process's one poller (the exporter's sources share it). */
export const ringPoller = new RingPoller();
