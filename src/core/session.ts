// A tracing session's lifecycle: what runs between "probes attached" and
// "process exits", and the guarantee that every exit path detaches.
//
// Stops on: -d elapsed, SIGINT/SIGTERM/SIGHUP, the -- CMD ending, the
// reader of stdout going away, an error, or the tool calling stop().
// Then: drain ring buffers, print the final summary (not when stdout is
// gone or the terminal hung up), release every resource in reverse order.
import type { Output } from './output/stdout.js';
import type { RingBuffer } from './ringbuf.js';
import type { Target } from './target.js';
import { EXIT_OK, EXIT_RUNTIME, errorLine } from './errors.js';

export type StopReason = 'duration' | 'interrupt' | 'terminate' | 'hangup' | 'target-exit' | 'pipe-closed' | 'error' | 'done';

export interface Closeable {
  close(): void;
}

export interface SessionOptions {
  out: Output;
  target: Target;
  /** -d SECS; 0 means: attach, then stop at once (start-up benchmarks). */
  durationSec?: number;
  /** -i SECS */
  intervalSec?: number;
  /** Prefix of error lines: `rbtrace <tool>`. */
  errorPrefix: string;
  verbose?: boolean;
}

export class Session {
  private readonly resources: Closeable[] = [];
  private readonly ringBuffers: RingBuffer[] = [];
  private readonly intervalHandlers: (() => void)[] = [];
  private readonly finishHandlers: ((reason: StopReason) => void)[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private stopReason?: StopReason;
  private exitCode = EXIT_OK;
  private resolveRun?: (code: number) => void;
  private readonly signalHandlers: [NodeJS.Signals, () => void][] = [];
  readonly startedAt = Date.now();
  /** process.hrtime in ns at start: bpf_ktime_get_ns() uses the same clock. */
  readonly startedMonoNs = process.hrtime.bigint();

  constructor(readonly opts: SessionOptions) {
    opts.out.whenClosed(() => this.stop('pipe-closed'));
  }

  get out(): Output {
    return this.opts.out;
  }

  get stopped(): boolean {
    return this.stopReason !== undefined;
  }

  /** Released (in reverse order) when the session ends, whatever the reason. */
  own<T extends Closeable>(resource: T): T {
    this.resources.push(resource);
    return resource;
  }

  /** Polled while running; drained once more before the final summary. */
  addRingBuffer(rb: RingBuffer): RingBuffer {
    this.ringBuffers.push(rb);
    this.own(rb);
    return rb;
  }

  /** Called every -i seconds (if -i was given). */
  onInterval(fn: () => void): void {
    this.intervalHandlers.push(fn);
  }

  /** Called once at the end, for the final summary (not if stdout is gone). */
  onFinish(fn: (reason: StopReason) => void): void {
    this.finishHandlers.push(fn);
  }

  /** Wall-clock ms of a bpf_ktime_get_ns() timestamp. */
  wallTimeOf(monoNs: number): number {
    return this.startedAt + (monoNs - Number(this.startedMonoNs)) / 1e6;
  }

  /** Seconds since the session started, of a bpf_ktime_get_ns() timestamp. */
  secondsSinceStart(monoNs: number): number {
    return (monoNs - Number(this.startedMonoNs)) / 1e9;
  }

  stop(reason: StopReason, exitCode?: number): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    if (exitCode !== undefined) this.exitCode = exitCode;
    // Finish on a fresh tick: stop() may be called from inside a ring buffer callback.
    setImmediate(() => this.finish());
  }

  fail(err: unknown): void {
    process.stderr.write(errorLine(this.opts.errorPrefix, err) + '\n');
    if (this.opts.verbose && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    this.stop('error', EXIT_RUNTIME);
  }

  /** Start the clock: release the command, poll, tick, wait for the end. Resolves to the exit status. */
  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.resolveRun = resolve));
    const trap = (signal: NodeJS.Signals, reason: StopReason) => {
      const handler = () => {
        // Pass SIGTERM/SIGHUP on to the command we started; SIGINT from a
        // terminal already reached it through the process group.
        if (signal !== 'SIGINT') this.opts.target.command?.kill(signal);
        this.stop(reason);
      };
      process.on(signal, handler);
      this.signalHandlers.push([signal, handler]);
    };
    trap('SIGINT', 'interrupt');
    trap('SIGTERM', 'terminate');
    trap('SIGHUP', 'hangup');

    for (const rb of this.ringBuffers) rb.start(10, (err) => this.fail(err));

    // Signal listeners do not keep Node's event loop alive: a tool with no
    // ring buffer, -i or -d (syscount waiting for Ctrl-C) would otherwise
    // exit at once. This timer holds the loop open until finish() clears it.
    this.timers.push(setInterval(() => {}, 1 << 30));

    const { durationSec, intervalSec } = this.opts;
    if (intervalSec !== undefined && this.intervalHandlers.length) {
      this.timers.push(setInterval(() => this.safely(() => this.intervalHandlers.forEach((fn) => fn())), intervalSec * 1000));
    }
    if (durationSec !== undefined) {
      // With -i, let the last interval's report land before the end.
      this.timers.push(setTimeout(() => this.stop('duration'), durationSec * 1000 + (intervalSec !== undefined ? 50 : 0)));
    }

    const exited = this.opts.target.exited;
    if (exited) {
      exited.then((st) => {
        if (!this.stopReason) this.stop('target-exit', st.status);
        else if (this.stopReason === 'interrupt' || this.stopReason === 'terminate') this.exitCode = st.status;
      });
    }
    this.opts.target.release();
    // Tests (and humans with -v) wait for this line before starting a workload.
    if (this.opts.verbose) process.stderr.write(`${this.opts.errorPrefix}: probes attached, tracing\n`);
    return done;
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(err);
    }
  }

  private finish(): void {
    for (const t of this.timers) clearInterval(t);
    for (const rb of this.ringBuffers) {
      rb.stop();
      if (this.stopReason !== 'pipe-closed') this.safely(() => rb.consume());
    }
    const reason = this.stopReason!;
    if (reason !== 'pipe-closed' && reason !== 'hangup' && !this.out.isClosed) {
      for (const fn of this.finishHandlers) this.safely(() => fn(reason));
    }
    this.close();
    for (const [signal, handler] of this.signalHandlers) process.off(signal, handler);
    // A reader that went away is not a failure (`| head` is normal use).
    this.resolveRun?.(reason === 'pipe-closed' ? EXIT_OK : this.exitCode);
  }

  /** Release everything now (also the path taken on a start-up error). */
  close(): void {
    for (const r of this.resources.splice(0).reverse()) {
      try {
        r.close();
      } catch {
        // keep releasing the rest
      }
    }
  }
}
