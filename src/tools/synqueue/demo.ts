// synqueue --demo: the classic somaxconn experiment, self-contained.
//
// Two listeners on 127.0.0.1 that accept slowly (listen(500) and
// listen(4096), the latter capped by net.core.somaxconn), made with libc
// sockets because Node accepts every connection at once and its queues never
// fill. A load generator (Node net, loopback only) opens a bounded number of
// connections to both in bursts; the small queue fills and overflows while
// the large one holds. Everything is closed with RSTs at the end, so no
// socket (not even TIME_WAIT) stays behind.
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { RawListener } from '../../core/ffi/sockets.js';

export interface DemoOptions {
  /** Seconds the load generator runs (it stops before the demo ends). */
  loadSeconds: number;
  /** Connections opened to each server per burst, and bursts per second. */
  perBurst?: number;
  burstsPerSec?: number;
  /** Connections each server accepts per second. */
  acceptPerSec?: number;
}

export function somaxconn(): number {
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
  } catch {
    return 4096;
  }
}

export class SynqueueDemo {
  readonly small: RawListener;
  readonly large: RawListener;
  private readonly clients = new Set<Socket>();
  private readonly timers: NodeJS.Timeout[] = [];
  opened = 0;
  accepted = 0;
  private closed = false;

  constructor(readonly smallBacklog = 500, readonly largeBacklog = 4096) {
    this.small = new RawListener('127.0.0.1', smallBacklog);
    try {
      this.large = new RawListener('127.0.0.1', largeBacklog);
    } catch (err) {
      this.small.close();
      throw err;
    }
  }

  get ports(): number[] {
    return [this.small.port, this.large.port];
  }

  /** What the user is about to see, for the header. */
  describe(): string {
    const cap = somaxconn();
    return [
      `demo: two servers on 127.0.0.1 accepting slowly, a load generator bursting connections at both`,
      `  port ${this.small.port}: listen(${this.smallBacklog}) -> accept limit ${Math.min(this.smallBacklog, cap)}`,
      `  port ${this.large.port}: listen(${this.largeBacklog}) -> accept limit ${Math.min(this.largeBacklog, cap)} (net.core.somaxconn = ${cap})`,
      `  watch the first one fill to its limit and overflow while the second holds`,
    ].join('\n');
  }

  start(opts: DemoOptions): void {
    const perBurst = opts.perBurst ?? 120;
    const burstsPerSec = opts.burstsPerSec ?? 5;
    const acceptPerSec = opts.acceptPerSec ?? 40;
    // Bounded: the generator stops after loadSeconds, and in any case after
    // this many connections per server.
    const maxPerServer = Math.min(3000, Math.ceil(opts.loadSeconds * burstsPerSec) * perBurst);
    let sent = 0;
    const burst = setInterval(() => {
      if (this.closed || sent >= maxPerServer) return clearInterval(burst);
      for (let i = 0; i < perBurst; i++) for (const port of this.ports) this.open(port);
      sent += perBurst;
    }, 1000 / burstsPerSec);
    const stopLoad = setTimeout(() => clearInterval(burst), opts.loadSeconds * 1000);
    // Slow servers: a few accepts every 100 ms.
    const perTick = Math.max(1, Math.round(acceptPerSec / 10));
    const accept = setInterval(() => {
      if (this.closed) return;
      this.accepted += this.small.acceptAndReset(perTick) + this.large.acceptAndReset(perTick);
    }, 100);
    this.timers.push(burst, stopLoad, accept);
  }

  private open(port: number): void {
    this.opened++;
    const s = connect({ host: '127.0.0.1', port });
    this.clients.add(s);
    const drop = () => {
      this.clients.delete(s);
      s.destroy();
    };
    s.on('error', drop); // reset by the server (accepted then closed), or at the end
    s.on('end', drop);
    s.on('close', () => this.clients.delete(s));
  }

  /** Stop everything: reset client connections, close the listeners. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const s of this.clients) {
      if (typeof s.resetAndDestroy === 'function' && s.readyState === 'open') s.resetAndDestroy();
      else s.destroy();
    }
    this.clients.clear();
    this.small.close();
    this.large.close();
  }
}
