// One timer reads every ring buffer of the process, and it slows down while
// nothing comes.
//
// A timer per ring at 10 ms woke the event loop 100 times a second per ring
// whether or not anything came: measured, 1-3 % of a core for a tool that
// saw nothing (profile -p of a sleeping process, execsnoop on a quiet host).
// Here one timer reads all rings (ring_buffer__consume makes no syscall when
// a ring is empty): every pollMs while records come, and once STREAM_IDLE_MS
// have passed without one, twice as slowly each time up to IDLE_MAX_MS. So a
// stream is read in batches as before, and an idle tool wakes 10 times a
// second in all; the first record after a quiet spell waits at most
// IDLE_MAX_MS.
//
// Why not a wait that wakes on data (poll(2) on the rings' fds on a worker
// thread, through koffi's async call): built and measured (idle 0.1 % of a
// core), and dropped after rbtrace died of SIGSEGV in V8 code on the arm64
// guest's Ruby dwarf check. This timer design then died the same way in the
// same check (test/vm/README.md, "Kernel facts"), so the thread was not the
// cause; the worker design is in git history (3e6512c, 66cb942) should the
// idle cost matter more than its extra thread.

export interface PolledRing {
  /** Hand every pending record to its handler; returns how many. Throws what a handler threw. */
  consume(): number;
}

interface Entry {
  pollMs: number;
  onError: (err: unknown) => void;
}

/** Reading every pollMs goes on until no ring has had a record for this long. */
const STREAM_IDLE_MS = 250;
/** The slowest reading while nothing comes: the longest a first record after a quiet spell waits. */
export const IDLE_MAX_MS = 100;

class RingPoller {
  private readonly rings = new Map<PolledRing, Entry>();
  private timer?: NodeJS.Timeout;
  private delayMs = 0;
  private lastRecordAt = 0;

  add(ring: PolledRing, pollMs: number, onError: (err: unknown) => void): void {
    this.rings.set(ring, { pollMs, onError });
    // A new ring is read at its own pace from the start, as if records were coming.
    this.lastRecordAt = performance.now();
    this.schedule(this.batchMs());
  }

  remove(ring: PolledRing): void {
    if (!this.rings.delete(ring) || this.rings.size > 0) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    if (this.timer && ms >= this.delayMs) return;
    clearTimeout(this.timer);
    this.delayMs = ms;
    this.timer = setTimeout(() => this.tick(), ms);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.rings.size === 0) return;
    const now = performance.now();
    if (this.read() > 0) this.lastRecordAt = now;
    const batch = this.batchMs();
    const next = now - this.lastRecordAt < STREAM_IDLE_MS ? batch : Math.min(IDLE_MAX_MS, Math.max(batch, this.delayMs * 2));
    this.schedule(next);
  }

  /** Consume every ring; how many records they held. A ring's handler error goes to its own onError. */
  private read(): number {
    let records = 0;
    for (const [ring, entry] of this.rings) {
      try {
        records += ring.consume();
      } catch (err) {
        records++;
        entry.onError(err);
      }
    }
    return records;
  }

  private batchMs(): number {
    return Math.min(...[...this.rings.values()].map((e) => e.pollMs));
  }
}

/** The process's one poller (the exporter's sources share it). */
export const ringPoller = new RingPoller();
