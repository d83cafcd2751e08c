// The exporter's sources as independent parts: each one attaches, or fails
// for good, or waits to try again, without taking the others with it. A
// kernel that refuses a tool's programs costs that tool's metrics, not the
// exporter (rbtrace_exporter_source_up{tool} 0, the reason on the log).
//
// Failed for good: the kernel refused (no attach path works), or anything
// not known to pass. Tried again with backoff: causes that pass by
// themselves (a busy resource, memory, a ruby not started yet).
import type { MetricFamily } from '../../core/metrics/exposition.js';
import { RbtraceError } from '../../core/errors.js';
import type { Source } from './sources.js';

export type SourceState = 'attaching' | 'up' | 'retrying' | 'failed';

interface Slot {
  tool: string;
  state: SourceState;
  source?: Source;
  reason?: string;
  attempts: number;
  timer?: NodeJS.Timeout;
}

/** errnos whose cause may pass: EINTR, EAGAIN, ENOMEM, EBUSY. */
const TRANSIENT_ERRNOS = new Set([4, 11, 12, 16]);
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 5 * 60_000;

export function transient(err: unknown): boolean {
  if (!(err instanceof RbtraceError)) return false;
  return err.transient || (err.errno !== undefined && TRANSIENT_ERRNOS.has(err.errno));
}

export class SourceSupervisor {
  private readonly slots: Slot[];
  private closed = false;
  /** Called after a source attaches or fails for good on a retry. */
  onSettle: () => void = () => {};

  constructor(tools: readonly string[], private readonly start: (tool: string) => Source,
    private readonly log: { warn(m: string): void; verbose(m: string): void },
    private readonly retryMs = (attempt: number) => Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempt - 1))) {
    this.slots = tools.map((tool) => ({ tool, state: 'attaching', attempts: 0 }));
  }

  /** Try every source once, letting the event loop run between them (scrapes meanwhile get 503). */
  async startAll(stopping: () => boolean): Promise<void> {
    for (const slot of this.slots) {
      await new Promise((r) => setImmediate(r));
      if (stopping()) return;
      this.attempt(slot);
    }
  }

  private attempt(slot: Slot): void {
    if (this.closed) return;
    slot.attempts++;
    try {
      const source = this.start(slot.tool);
      if (this.closed) {
        source.close();
        return;
      }
      slot.source = source;
      slot.state = 'up';
      slot.reason = undefined;
      const degraded = source.degraded?.length ? `; ${source.degraded.join('; ')}` : '';
      this.log.verbose(`${slot.tool}: attached (${source.path})${degraded}`);
      if (degraded) this.log.warn(`${slot.tool}: runs without some of its programs${degraded}`);
    } catch (err) {
      slot.reason = err instanceof Error ? err.message : String(err);
      if (transient(err)) {
        slot.state = 'retrying';
        const wait = this.retryMs(slot.attempts);
        this.log.warn(`${slot.tool} not attached (attempt ${slot.attempts}): ${slot.reason}; trying again in ${Math.round(wait / 1000)} s`);
        slot.timer = setTimeout(() => {
          slot.timer = undefined;
          this.attempt(slot);
          if (slot.state !== 'retrying') this.onSettle();
        }, wait);
        slot.timer.unref();
      } else {
        slot.state = 'failed';
        this.log.warn(`${slot.tool} left out: ${slot.reason}`);
      }
    }
  }

  /** The sources attached now. */
  up(): Source[] {
    return this.slots.filter((s) => s.state === 'up').map((s) => s.source!);
  }

  state(tool: string): SourceState | undefined {
    return this.slots.find((s) => s.tool === tool)?.state;
  }

  reason(tool: string): string | undefined {
    return this.slots.find((s) => s.tool === tool)?.reason;
  }

  /** Every source attached or failed for good (none attaching or waiting to try again): /healthz's rule. */
  settled(): boolean {
    return this.slots.every((s) => s.state === 'up' || s.state === 'failed');
  }

  /** Every source failed for good. */
  allFailed(): boolean {
    return this.slots.every((s) => s.state === 'failed');
  }

  families(): MetricFamily[] {
    return [
      {
        name: 'rbtrace_exporter_source_up', type: 'gauge',
        help: 'Whether a tool\'s probes are attached (1) or not (0: failed for good, or waiting to try again; the reason is on the exporter\'s log).',
        samples: this.slots.map((s) => ({ labels: { tool: s.tool }, value: s.state === 'up' ? 1 : 0 })),
      },
      {
        name: 'rbtrace_exporter_source_degraded', type: 'gauge',
        help: 'Optional programs a tool runs without (refused by the kernel, or whose hook this kernel lacks): its figures stay exact, at some cost said on the log.',
        samples: this.slots.filter((s) => s.state === 'up').map((s) => ({ labels: { tool: s.tool }, value: s.source!.degraded?.length ?? 0 })),
      },
    ];
  }

  close(): void {
    this.closed = true;
    for (const s of [...this.slots].reverse()) {
      if (s.timer) clearTimeout(s.timer);
      try {
        s.source?.close();
      } catch { /* keep detaching the rest */ }
      s.source = undefined;
    }
  }
}
