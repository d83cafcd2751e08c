// The HTTP side of the exporter: /metrics and /healthz on Node's http module.
// Both answer 503 until the owner says the probes are attached, so a scrape
// never sees a half-started exporter.
import { createServer, type Server } from 'node:http';
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

export class MetricsServer {
  private readonly server: Server;
  /** Set once the initial attach is done: before it, /metrics and /healthz answer 503. */
  ready = false;
  /** /healthz's rule after that (the exporter's: every source attached or failed for good). */
  healthy: () => boolean = () => true;
  scrapes = 0;
  /** Scrapes answered, per format: what scrapers asked for. */
  readonly byFormat = { text: 0, openmetrics: 0 };
  /** Rendered documents of a reading: scrapes that share a reading share its text too. */
  private readonly rendered = new WeakMap<MetricFamily[], { text?: string; openmetrics?: string }>();

  constructor(private readonly gather: () => MetricFamily[], private readonly onError: (err: unknown) => void) {
    this.server = createServer((req, res) => {
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
      let body: string;
      const om = wantsOpenMetrics(req.headers.accept);
      try {
        this.scrapes++;
        this.byFormat[om ? 'openmetrics' : 'text']++;
        const families = this.gather();
        const docs = this.rendered.get(families) ?? {};
        const format = om ? 'openmetrics' : 'text';
        body = docs[format] ??= render(families, om);
        this.rendered.set(families, docs);
      } catch (err) {
        this.onError(err);
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('rbtrace exporter: collection failed (see its log)\n');
        return;
      }
      res.writeHead(200, { 'Content-Type': om ? OPENMETRICS_CONTENT_TYPE : TEXT_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    // A slow or stuck scraper must not hold sockets forever.
    this.server.requestTimeout = 30_000;
    this.server.headersTimeout = 10_000;
  }

  listen(addr: ListenAddress): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'address in use (another exporter?)' : err.code === 'EADDRNOTAVAIL' ? 'no such local address' : err.message;
        reject(new RbtraceError(`cannot listen on ${addr.host}:${addr.port}: ${why}`, { hint: 'pick another with --listen HOST:PORT' }));
      };
      this.server.once('error', fail);
      this.server.listen(addr.port, addr.host, () => {
        this.server.off('error', fail);
        this.server.on('error', (err) => this.onError(err));
        resolve();
      });
    });
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }
}
