// A tracing session's lifecycle: what runs between "probes attached" and
// "process exits", and the guarantee that every exit path detaches and
// that a command started with `-- CMD` never runs on untraced.
//
// The rules (man/rbtrace.8, EXIT STATUS and SIGNALS), the same for every tool:
// - The run ends when the target ends (the command exits, the -p process
//   goes away), -d elapses, a stop signal arrives, the report's reader
//   goes away (stdout's, or stderr's with -- CMD), a write or other error
//   happens, or the tool calls stop().
// - SIGINT, SIGTERM, SIGHUP, SIGQUIT without a command: stop now. With a
//   command still running: pass the signal on to it (not a SIGINT/SIGQUIT
//   the terminal already sent it), keep tracing until it exits, then stop
//   with its status. A third signal kills the command (SIGKILL).
// - Ending for any other reason while the command runs: SIGTERM to it,
//   SIGKILL after GRACE_MS, wait for it, then stop. (If rbtrace itself is
//   killed, the gate's parent-death signal kills the command.)
// - Then: drain ring buffers, print the final summary (not when its stream is
//   gone, nor on a terminal that hung up), release every resource in
//   reverse order. Exit status: the command's if there is one (128+N for
//   signal N), else 0; 1 after an error (a failed write included).
import type { Output } from './output/stdout.js';
import type { RingBuffer } from './bpf/ringbuf.js';
import type { Target } from './target.js';
import type { ExitStatus } from './linux/gate.js';
import { EXIT_OK, EXIT_RUNTIME, RbtraceError, errorLine } from './errors.js';

export type StopReason = 'duration' | 'interrupt' | 'terminate' | 'hangup' | 'quit' | 'target-exit' | 'pipe-closed' | 'error' | 'done';

/**
 * The signals that end a run, and the reason each gives. SIGPIPE stays
 * ignored, as Node has it: a reader going away shows as EPIPE on a write.
 */
const STOP_SIGNALS: [NodeJS.Signals, StopReason][] = [
  ['SIGINT', 'interrupt'], ['SIGTERM', 'terminate'], ['SIGHUP', 'hangup'], ['SIGQUIT', 'quit'],
];

/** How long a command that rbtrace stops itself gets between SIGTERM and SIGKILL. */
export const GRACE_MS = 5000;

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
  private defaultIntervalSec?: number;
  private readonly finishHandlers: ((reason: StopReason) => void)[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private stopReason?: StopReason;
  /** The first stop signal passed on to the command: the reason, once it exits. */
  private signalReason?: StopReason;
  private signalsSeen = 0;
  private errored = false;
  private running = false;
  private resolveRun?: (code: number) => void;
  private readonly signalHandlers: [NodeJS.Signals, () => void][] = [];
  readonly startedAt = Date.now();
  /** process.hrtime in ns at start: bpf_ktime_get_ns() uses the same clock. */
  readonly startedMonoNs = process.hrtime.bigint();

  constructor(readonly opts: SessionOptions) {
    opts.out.whenClosed(() => this.stop('pipe-closed'));
    // Before run(), a failed write surfaces through out.flush() in the CLI.
    opts.out.whenFailed((err) => {
      if (this.running) this.fail(err);
    });
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

  /**
   * Called every -i seconds: if -i was given, or else every `defaultSec`
   * when the tool reports periodically by default (synqueue: each second).
   */
  onInterval(fn: () => void, defaultSec?: number): void {
    this.intervalHandlers.push(fn);
    if (defaultSec !== undefined) this.defaultIntervalSec = defaultSec;
  }

  /** Called once at the end, for the final summary (not if the report's stream is gone). */
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

  /** End the run. The exit status is decided at the end (see the rules above). */
  stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    // Finish on a fresh tick: stop() may be called from inside a ring buffer callback.
    setImmediate(() => void this.finish());
  }

  /** One line on stderr, exit status 1. */
  fail(err: unknown): void {
    if (this.errored) return;
    this.errored = true;
    process.stderr.write(errorLine(this.opts.errorPrefix, err) + '\n');
    // A stack trace only for bugs, not for what the user can fix (a full disk).
    if (this.opts.verbose && err instanceof Error && !(err instanceof RbtraceError) && err.stack) process.stderr.write(err.stack + '\n');
    this.stop('error');
  }

  /** Start the clock: release the command, poll, tick, wait for the end. Resolves to the exit status. */
  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.resolveRun = resolve));
    this.running = true;
    if (this.out.error) this.fail(this.out.error);
    for (const [signal, reason] of STOP_SIGNALS) {
      const handler = () => this.onSignal(signal, reason);
      process.on(signal, handler);
      this.signalHandlers.push([signal, handler]);
    }

    for (const rb of this.ringBuffers) rb.start(rb.pollMs, (err) => this.fail(err));

    // Signal listeners do not keep Node's event loop alive: a tool with no
    // ring buffer, -i or -d (syscount waiting for Ctrl-C) would otherwise
    // exit at once. This timer holds the loop open until finish() clears it.
    this.timers.push(setInterval(() => {}, 1 << 30));

    const { durationSec, intervalSec } = this.opts;
    const everySec = intervalSec ?? this.defaultIntervalSec;
    if (everySec !== undefined && this.intervalHandlers.length) {
      this.timers.push(setInterval(() => this.safely(() => this.intervalHandlers.forEach((fn) => fn())), everySec * 1000));
    }
    if (durationSec !== undefined) {
      // With -i, let the last interval's report land before the end.
      this.timers.push(setTimeout(() => this.stop('duration'), durationSec * 1000 + (intervalSec !== undefined ? 50 : 0)));
    }

    // The target ending ends the run, for every tool alike: the command's
    // exit, or the -p process going away.
    const target = this.opts.target;
    const watch = target.watchExit();
    if (watch) {
      this.own(watch);
      watch.exited.then(() => {
        if (target.pid !== undefined) this.verbose(`process ${target.pid} ended`);
        this.stop(this.signalReason ?? 'target-exit');
      });
    }
    if (target.command) this.verbose(`the command ends with rbtrace through ${target.command.leash}`);
    target.release();
    // Tests (and humans with -v) wait for this line before starting a workload.
    this.verbose('probes attached, tracing');
    return done;
  }

  private verbose(message: string): void {
    if (this.opts.verbose) process.stderr.write(`${this.opts.errorPrefix}: ${message}\n`);
  }

  /**
   * A stop signal. Without a running command: stop. With one: pass it on and
   * trace on until the command exits (its exit stops the run), so that
   * rbtrace never leaves it running untraced, and reports with its status.
   */
  private onSignal(signal: NodeJS.Signals, reason: StopReason): void {
    const cmd = this.opts.target.command;
    if (!cmd?.running) {
      this.stop(reason);
      return;
    }
    this.signalsSeen++;
    this.signalReason ??= reason;
    const name = cmd.argv[0];
    if (this.signalsSeen >= 3) {
      process.stderr.write(`${this.opts.errorPrefix}: killing ${name} (pid ${cmd.pid}): third signal\n`);
      cmd.kill('SIGKILL');
      return;
    }
    if (this.stopReason) return; // already stopping it with SIGTERM
    // Ctrl-C and Ctrl-\ went to the terminal's whole foreground process
    // group, the command included: do not deliver them twice.
    const fromKeyboard = this.signalsSeen === 1 && (signal === 'SIGINT' || signal === 'SIGQUIT') && cmd.inTerminalForeground();
    if (!fromKeyboard) cmd.kill(signal);
    if (this.signalsSeen === 1) {
      const note = setTimeout(() => {
        if (cmd.running && !this.stopReason) {
          process.stderr.write(`${this.opts.errorPrefix}: ${name} (pid ${cmd.pid}) still runs after ${signal}: tracing until it exits (a third signal kills it)\n`);
        }
      }, 1000);
      note.unref();
      this.timers.push(note);
    }
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(err);
    }
  }

  private async finish(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    // rbtrace ends before the command (-d, the report's reader gone, an error): stop it
    // and wait for it, so that it does not run on untraced.
    const cmd = this.opts.target.command;
    let cmdStatus: ExitStatus | undefined;
    if (cmd) {
      if (cmd.running) this.verbose(`stopping ${cmd.argv[0]} (pid ${cmd.pid}) with SIGTERM`);
      cmdStatus = await cmd.stop('SIGTERM', GRACE_MS);
    }
    const reason = this.stopReason!;
    for (const rb of this.ringBuffers) {
      rb.stop();
      if (!this.out.isClosed) this.safely(() => rb.consume());
    }
    // After a hangup a summary is still worth writing to a file or a pipe, not to the dead terminal.
    if (!this.out.isClosed && !(reason === 'hangup' && this.out.isTTY)) {
      for (const fn of this.finishHandlers) this.safely(() => fn(reason));
    }
    // Write errors of files arrive a tick after the write: wait for them before deciding the status.
    await this.out.flush().catch(() => {});
    this.close();
    for (const [signal, handler] of this.signalHandlers) process.off(signal, handler);
    // A reader that went away is not a failure (`| head` is normal use).
    this.resolveRun?.(this.errored ? EXIT_RUNTIME : cmdStatus?.status ?? EXIT_OK);
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
