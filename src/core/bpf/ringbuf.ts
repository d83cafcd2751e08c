// Ring buffer consumption without blocking Node's event loop.
//
// ring_buffer__consume only reads the producer position from shared memory
// (no syscall when there is nothing new), so a short timer is cheap and keeps
// the loop free: no thread, no blocking epoll_wait. Records are handed to the
// callback as DataViews over the ring's memory, valid only during the call:
// decode or copy them there.
import { libbpf, lastErrno, registerSampleCallback, unregisterCallback, type Pointer } from '../ffi/libbpf.js';
import { RbtraceError, errnoText } from '../errors.js';
import type { BpfMap } from './maps.js';
import { readPerCpuCounter } from './maps.js';

export type RecordHandler = (record: DataView) => void;

export class RingBuffer {
  private rb: Pointer | null;
  private readonly callback: object;
  private timer?: NodeJS.Timeout;
  private handlerError?: unknown;
  /** Records delivered so far. */
  received = 0;
  /** How often the session polls it, ms (a tool whose records come at a known rate may poll less often). */
  pollMs = 10;

  constructor(map: BpfMap, handler: RecordHandler) {
    this.callback = registerSampleCallback((data) => {
      this.received++;
      try {
        handler(new DataView(data));
      } catch (err) {
        // Never let an exception unwind through C; rethrow after consume returns.
        this.handlerError ??= err;
        return -1;
      }
      return 0;
    });
    this.rb = libbpf.ringBufferNew(map.fd, this.callback, null, null);
    if (!this.rb) {
      const errno = lastErrno();
      unregisterCallback(this.callback);
      throw new RbtraceError(`cannot open ring buffer ${map.name}: ${errnoText(errno)}`);
    }
  }

  /** Hand every pending record to the handler; returns how many. */
  consume(): number {
    if (!this.rb) return 0;
    const n = libbpf.ringBufferConsume(this.rb);
    if (this.handlerError) {
      const err = this.handlerError;
      this.handlerError = undefined;
      throw err;
    }
    if (n < 0 && n !== -4 /* EINTR */) throw new RbtraceError(`reading ring buffer failed: ${errnoText(n)}`);
    return Math.max(0, n);
  }

  /** Poll every `intervalMs` from the event loop. */
  start(intervalMs = 10, onError?: (err: unknown) => void): void {
    this.timer ??= setInterval(() => {
      try {
        this.consume();
      } catch (err) {
        if (onError) onError(err);
        else throw err;
      }
    }, intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.stop();
    if (this.rb) {
      libbpf.ringBufferFree(this.rb);
      this.rb = null;
      unregisterCallback(this.callback);
    }
  }
}

/** Events the BPF side failed to reserve (rbtrace_lost in rbtrace.bpf.h). */
export function lostEvents(lostMap: BpfMap): number {
  return readPerCpuCounter(lostMap);
}
