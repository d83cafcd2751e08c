// The HTTP side of the exporter: /metrics and /healthz on Node's http module.
// Both answer 503 until the owner says the probes are attached, so a scrape
// never sees a half-started exporter.
//
// Any local user can connect to it, so it must stay up, in bounded memory,
// under any client (issue 26: 4,000 connections that pipeline GET /metrics
// and never read took the heap to its cap in 15 s). Hence:
// - one rendered Buffer per reading and format, shared by every response
//   (a write holds a reference to it, never a copy);
// - at most `maxConnections` connections, `perClient` per source address;
//   a newcomer past either cap evicts an old connection (a stalled one
//   first, then an idle one, oldest first) rather than being refused, so a
//   scraper that connects during a flood still gets in and is answered
//   before the flood's next few hundred connections arrive;
// - addresses named as scrapers have room of their own (`reserved`), never
//   taken by others and never evicted by them;
// - at most `maxPipelined` requests answered-but-unsent per connection;
// - a connection whose unsent bytes make no progress for `stallMs`, or that
//   is silent for `idleMs`, is closed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { RbtraceError, UsageError } from '../errors.js';
import { OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, render, wantsOpenMetrics, type MetricFamily } from './exposition.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** HOST:PORT, [V6]:PORT or :PORT (all addresses: the operator's explicit choice). */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`--listen wants HOST:PORT, got '${text}'`, 'e.g. --listen 127.0.0.1:9435, or --listen [::1]:9435');
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export interface ClientLimits {
  /** Connections from everyone but the scrapers. */
  maxConnections: number;
  /** Connections from one source address (scrapers aside). */
  perClient: number;
  /** Source addresses of the scrapers (Prometheus): room of their own. */
  scrapers: string[];
  /** Connections kept for the scrapers, whatever the others do. */
  reserved: number;
  /** Responses queued on one connection (pipelined requests not yet sent): past it the connection is closed. */
  maxPipelined: number;
  /** A connection with unsent bytes that make no progress this long is closed. */
  stallMs: number;
  /** A connection with no traffic at all this long is closed. */
  idleMs: number;
}

/**
 * 256 connections hold about 15 MiB of sockets and parsers at most, well
 * inside the 160 MiB heap cap (man rbtrace-exporter, MEMORY); 128 per address
 * let one host run 100 scrapes in parallel and leave room for another. 4 pipelined responses: a
 * scraper waits for each answer. 5 s of no progress: a scrape's few hundred
 * KiB leave in milliseconds on any link a scraper uses.
 */
export const DEFAULT_LIMITS: ClientLimits = {
  maxConnections: 256, perClient: 128, scrapers: scrapersFromEnv(), reserved: 16, maxPipelined: 4, stallMs: 5_000, idleMs: 15_000,
};

/** RBTRACE_EXPORTER_SCRAPERS: comma-separated source addresses of the scrapers. */
export function scrapersFromEnv(env = process.env): string[] {
  return (env.RBTRACE_EXPORTER_SCRAPERS ?? '').split(',').map((s) => normalAddress(s.trim())).filter(Boolean);
}

/** An IPv4 client seen on an IPv6 socket is the same client: ::ffff:1.2.3.4 is 1.2.3.4. */
function normalAddress(addr: string): string {
  return addr.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

interface Client {
  addr: string;
  scraper: boolean;
  /** Requests this connection made (answered, or being answered). */
  answered: number;
  /** Requests parsed in this turn of the event loop (pipelined ones come together). */
  asked: number;
  /** socket.bytesWritten at the last sweep, and when it last moved. */
  written: number;
  movedAt: number;
}

export class MetricsServer {
  private readonly server: Server;
  /** Set once the initial attach is done: before it, /metrics and /healthz answer 503. */
  ready = false;
  /** /healthz's rule after that (the exporter's: every source attached or failed for good). */
  healthy: () => boolean = () => true;
  scrapes = 0;
  /** Scrapes answered, per format: what scrapers asked for. */
  readonly byFormat = { text: 0, openmetrics: 0 };
  /** Connections closed to keep the limits, by why: what a flood cost its senders. */
  readonly closed = { evicted: 0, pipelined: 0, stalled: 0 };
  /** Rendered documents of a reading: scrapes that share a reading share its Buffer too. */
  private readonly rendered = new WeakMap<MetricFamily[], { text?: Buffer; openmetrics?: Buffer }>();
  /** Open connections, oldest first (a Map keeps insertion order). */
  private readonly clients = new Map<Socket, Client>();
  private readonly perAddress = new Map<string, number>();
  private others = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly gather: () => MetricFamily[], private readonly onError: (err: unknown) => void,
    private readonly limits: ClientLimits = DEFAULT_LIMITS) {
    this.server = createServer((req, res) => this.answer(req, res));
    this.server.on('connection', (socket: Socket) => this.admit(socket));
    // A slow or stuck scraper must not hold sockets forever.
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
    this.server.timeout = limits.idleMs;
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, limits.stallMs)).unref();
  }

  /** Open connections now (scrapers' and others'). */
  get connections(): number {
    return this.clients.size;
  }

  private admit(socket: Socket): void {
    const addr = normalAddress(socket.remoteAddress ?? '');
    const scraper = this.limits.scrapers.includes(addr);
    if (scraper) {
      if (this.count(true) >= this.limits.reserved) this.evict((c) => c.scraper);
    } else {
      if ((this.perAddress.get(addr) ?? 0) >= this.limits.perClient) this.evict((c) => !c.scraper && c.addr === addr);
      if (this.others >= this.limits.maxConnections) this.evict((c) => !c.scraper);
    }
    const client: Client = { addr, scraper, answered: 0, asked: 0, written: 0, movedAt: Date.now() };
    this.clients.set(socket, client);
    if (!scraper) this.others++;
    if (!scraper) this.perAddress.set(addr, (this.perAddress.get(addr) ?? 0) + 1);
    // Unless forget() has uncounted it already.
    socket.once('close', () => { if (this.clients.get(socket) === client) this.uncount(socket, client); });
  }

  private count(scraper: boolean): number {
    return scraper ? this.clients.size - this.others : this.others;
  }

  private uncount(socket: Socket, c: Client): void {
    this.clients.delete(socket);
    if (c.scraper) return;
    this.others--;
    const n = (this.perAddress.get(c.addr) ?? 1) - 1;
    if (n > 0) this.perAddress.set(c.addr, n);
    else this.perAddress.delete(c.addr);
  }

  /**
   * Close the connection among `which` that serves least: a stalled one
   * first, then one answered before (idle between scrapes, or one that
   * asked and does not read), oldest first. One never answered yet (a
   * scraper that just connected) goes last: it is evicted only when more
   * newcomers than the cap arrive before its request is answered.
   */
  private evict(which: (c: Client) => boolean): void {
    let victim: Socket | undefined;
    let rank = 3;
    for (const [socket, c] of this.clients) {
      if (!which(c) || socket.destroyed) continue;
      const r = socket.writableLength > 0 ? 0 : c.answered > 0 ? 1 : 2;
      if (r < rank) [victim, rank] = [socket, r];
      if (rank === 0) break;
    }
    if (!victim) return;
    this.closed.evicted++;
    this.forget(victim);
  }

  /** Destroyed now and uncounted now (its 'close' comes later): the caps hold at once. */
  private forget(socket: Socket): void {
    const c = this.clients.get(socket);
    if (c) this.uncount(socket, c);
    // Stop parsing what it pipelined: every request parsed and not
    // answered costs an ECONNRESET error with its stack when it closes.
    (socket as Socket & { parser?: { pause?: () => void } }).parser?.pause?.();
    // A reset, not a FIN: the kernel drops what it still holds for the
    // client at once, instead of keeping it (an orphan socket) while it retries.
    socket.resetAndDestroy();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [socket, c] of this.clients) {
      if (socket.bytesWritten !== c.written || socket.writableLength === 0) {
        c.written = socket.bytesWritten;
        c.movedAt = now;
      } else if (now - c.movedAt >= this.limits.stallMs) {
        this.closed.stalled++;
        this.forget(socket);
      }
    }
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const client = this.clients.get(req.socket);
    // Closed by a limit: the requests it pipelined, parsed from what was
    // read already, still come one by one; none is answered, nor destroyed
    // (each destroy would build an ECONNRESET error with its stack: that,
    // not answering, was most of a flood's cost).
    if (!client || req.socket.destroyed) return;
    {
      // Pipelining: requests that came in one read of the socket are parsed
      // (and reach here) in one turn of the event loop. A client that waits
      // for each answer, however often it asks, never has two in one turn;
      // a flood that writes 50 requests and reads nothing has them all. The
      // kernel's send buffer (megabytes on loopback) would take the answers
      // whether or not the client reads them, so they are not answered.
      if (client.asked++ === 0) setImmediate(() => { client.asked = 0; });
      if (client.asked > this.limits.maxPipelined) {
        this.closed.pipelined++;
        this.forget(req.socket);
        return;
      }
      client.answered++;
    }
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (url !== '/metrics' && url !== '/healthz' && url !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    if (url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body><h1>rbtrace exporter</h1><a href="/metrics">/metrics</a> <a href="/healthz">/healthz</a></body></html>\n');
      return;
    }
    if (!this.ready) {
      res.writeHead(503, { 'Content-Type': 'text/plain', 'Retry-After': '1' }).end('rbtrace exporter: attaching probes\n');
      return;
    }
    if (url === '/healthz') {
      if (this.healthy()) res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      else res.writeHead(503, { 'Content-Type': 'text/plain', 'Retry-After': '5' }).end('rbtrace exporter: a tool is waiting to try attaching again\n');
      return;
    }
    let body: Buffer;
    const om = wantsOpenMetrics(req.headers.accept);
    try {
      this.scrapes++;
      this.byFormat[om ? 'openmetrics' : 'text']++;
      const families = this.gather();
      const docs = this.rendered.get(families) ?? {};
      const format = om ? 'openmetrics' : 'text';
      body = docs[format] ??= Buffer.from(render(families, om));
      this.rendered.set(families, docs);
    } catch (err) {
      this.onError(err);
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end('rbtrace exporter: collection failed (see its log)\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': om ? OPENMETRICS_CONTENT_TYPE : TEXT_CONTENT_TYPE, 'Content-Length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  listen(addr: ListenAddress): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'address in use (another exporter?)' : err.code === 'EADDRNOTAVAIL' ? 'no such local address' : err.message;
        reject(new RbtraceError(`cannot listen on ${addr.host}:${addr.port}: ${why}`, { hint: 'pick another with --listen HOST:PORT' }));
      };
      this.server.once('error', fail);
      // A deep accept queue: a burst of connections (a flood) must not make
      // the kernel drop a scraper's SYN (retried only after 1 s, then 3 s).
      this.server.listen({ port: addr.port, host: addr.host, backlog: 4096 }, () => {
        this.server.off('error', fail);
        this.server.on('error', (err) => this.onError(err));
        resolve();
      });
    });
  }

  close(): void {
    clearInterval(this.sweeper);
    this.server.close();
    this.server.closeAllConnections();
  }
}
