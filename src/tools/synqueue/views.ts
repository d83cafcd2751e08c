// synqueue's views of a SynqueueReport (collect.ts): the table (default),
// live charts, NDJSON, one line per event, and the --hist histograms on
// exit. No map access here: everything comes in as reports and rows. Every
// string that comes from the system (comm, container, namespace names, drop
// reasons) goes through escapeForTerminal() before a terminal sees it.
import type { ToolContext } from '../../core/tool.js';
import type { CommonOptions } from '../../core/options.js';
import { formatLog2Hist, log2HistToJson } from '../../core/output/histogram.js';
import { ColumnPrinter, type Align } from '../../core/output/table.js';
import type { ChalkInstance } from 'chalk';
import { escapeForTerminal as esc } from '../../core/output/format.js';
import { jsonText, ndjson } from '../../core/output/json.js';
import { LiveChart } from '../../core/output/chart.js';
import { AF_INET6, formatListener, labelOf, topRows, type EventRecord, type ListenerRow, type SynqueueReport } from './model.js';
import type { QueueHistogram } from './collect.js';

export interface SynqueueViewOptions {
  chart?: boolean;
  table?: boolean;
  events?: boolean;
  demo?: boolean;
  port?: number[];
  all?: boolean;
}

export interface View {
  show(report: SynqueueReport): void;
  event(e: EventRecord): void;
}

/** Rows a table or chart frame may use: the terminal's height, or $LINES / 50 when not on one. */
function screenRows(ctx: ToolContext): number {
  if (ctx.out.isTTY) return ctx.out.rows || 24;
  const lines = Number(process.env.LINES);
  return Number.isInteger(lines) && lines > 0 ? lines : 50;
}

export function makeView(ctx: ToolContext, opts: SynqueueViewOptions & CommonOptions, perSyn: boolean): View {
  if (opts.events) return eventsView(ctx, Boolean(opts.json), perSyn);
  if (opts.json) {
    const texts = new WeakMap<ListenerRow, Buffer>();
    const chunks: JsonChunk[] = [];
    return {
      event() {},
      show(report) {
        for (const part of reportJsonParts(report, texts, chunks)) ctx.out.write(part);
      },
    };
  }

  let chart: ChartView | undefined;
  let decided = Boolean(opts.chart);
  return {
    event() {},
    show(report) {
      const rows = report.listeners;
      if (!decided) {
        decided = true;
        // Default to the chart on a terminal when exactly one listener is selected.
        if (!opts.table && ctx.out.isTTY && rows.length === 1 && (opts.port || opts.pid !== undefined || opts.demo)) opts.chart = true;
      }
      if (opts.chart && ctx.out.isTTY) {
        chart ??= new ChartView(ctx);
        chart.show(report, Boolean(opts.all));
        return;
      }
      // Header line, column titles, blank line after, and the "more" line.
      const room = opts.all ? Infinity : Math.max(1, screenRows(ctx) - 4 - extraNetstatLines(report));
      ctx.out.write(renderTableReport(ctx, report, perSyn, room));
    },
  };
}

function eventsView(ctx: ToolContext, json: boolean, perSyn: boolean): View {
  const printer = new ColumnPrinter([
    { name: 'TIME', width: 8 }, { name: 'EVENT', width: 8 }, { name: 'LISTEN', width: 22 },
    { name: 'REMOTE', width: 22 }, { name: 'ACCEPT', width: 11 }, { name: 'SYN', width: 6 }, { name: 'REASON', width: 0 },
  ]);
  if (!json) ctx.out.write(printer.header());
  const print = (e: EventRecord) => {
    if (json) return ctx.out.record(e);
    const remote = e.remote_addr === null ? (e.count ? `${e.count} SYNs` : '-') : formatListener(e.remote_addr, e.remote_port ?? 0, e.remote_addr.includes(':') ? AF_INET6 : 2);
    ctx.out.write(printer.row([e.time.slice(11, 19), e.event, e.listener, remote, `${e.accept_queue}/${e.accept_limit}`, e.syn_queue,
      e.inferred ? 'SYNs dropped at a full accept queue (counted from sk_drops: this attach path does not see them one by one)' : e.reason ?? '']));  // ColumnPrinter escapes string cells
  };
  return {
    event: print,
    show(report) {
      // Without per-SYN probes, SYN-time overflows are only known as counts.
      if (perSyn) return;
      for (const r of report.listeners) {
        if (!r.overflows_inferred) continue;
        print({
          time: new Date().toISOString(), event: 'overflow', listener: labelOf(r), addr: r.addr, port: r.port,
          remote_addr: null, remote_port: null, reason: null, accept_queue: r.accept_queue, accept_limit: r.accept_limit,
          syn_queue: r.syn_queue, count: r.overflows, inferred: true,
        });
      }
    },
  };
}

/** The non-zero counter deltas, or a word that all are zero. */
export function formatNetstat(netstat: Record<string, number>, hi: (s: string) => string = (s) => s): string {
  const moved = Object.entries(netstat).filter(([, v]) => v > 0);
  return moved.length ? moved.map(([k, v]) => hi(`${k} +${v}`)).join('  ') : 'no listen overflows, drops or SYN cookies';
}

function pct(n: number, limit: number): string {
  return limit > 0 ? `${Math.round((100 * n) / limit)}%` : '-';
}

/** A namespace as the table shows it: its ip-netns name, else its inode. */
function netnsLabel(report: SynqueueReport, inode: number): string {
  const ns = report.namespaces.find((n) => n.netns === inode);
  return ns?.name ? esc(ns.name) : String(inode);
}

/** Namespaces whose counters moved, when there are several: one line each under the total. */
function movedNamespaces(report: SynqueueReport) {
  if (report.namespaces.length < 2) return [];
  return report.namespaces.filter((n) => Object.values(n.netstat).some((v) => v > 0));
}

function extraNetstatLines(report: SynqueueReport): number {
  return movedNamespaces(report).length;
}

function netstatLines(report: SynqueueReport, hi: (s: string) => string): string {
  return movedNamespaces(report).map((n) => `  netns ${netnsLabel(report, n.netns)}: ${formatNetstat(n.netstat, hi)}\n`).join('');
}

/**
 * The table: at most `room` rows, the listeners that matter first (overflows,
 * drops, fill: compareByImportance), then "N more listeners". A NETNS column
 * when the rows come from more than one network namespace, a CONTAINER
 * column when any owner is in one.
 */
export function renderTableReport(ctx: Pick<ToolContext, 'color'>, report: SynqueueReport, perSyn: boolean, room = Infinity): string {
  const c = ctx.color;
  const all = report.listeners;
  const multiNs = new Set(all.map((r) => r.netns)).size > 1;
  const head = `${new Date().toTimeString().slice(0, 8)}  TcpExt: ${formatNetstat(report.netstat, (s) => c.yellow(s))}` +
    (report.namespaces.length > 1 ? `  (${report.namespaces.length} network namespaces)` : '');
  const perNs = netstatLines(report, (s) => c.yellow(s));
  if (all.length === 0) return `${head}\n${perNs}(no listener matches)\n`;
  const rows = room >= all.length ? topRows(all, all.length) : topRows(all, room);
  const withContainer = rows.some((r) => r.container !== null);
  const headers = [...(multiNs ? ['NETNS'] : []), 'LISTEN', 'PID', 'COMM', ...(withContainer ? ['CONTAINER'] : []),
    'ACCEPT', 'MAX', 'LIMIT', 'FILL', 'SYN', 'MAX', 'LIMIT', 'OVERFLOW', 'DROPS', 'COOKIES', 'SYNACK-RTX'];
  const body = alignedTable(
    headers,
    rows.map((r) => [
      ...(multiNs ? [netnsLabel(report, r.netns)] : []),
      labelOf(r), r.pid ?? '-', r.comm === null ? '-' : esc(r.comm),
      ...(withContainer ? [r.container === null ? '-' : esc(r.container.slice(0, 12))] : []),
      r.accept_queue, r.accept_queue_max, r.accept_limit,
      r.accept_queue_max > r.accept_limit ? c.red(pct(r.accept_queue_max, r.accept_limit)) : pct(r.accept_queue_max, r.accept_limit),
      r.syn_queue, r.syn_queue_max, r.syn_limit,
      r.overflows ? c.red(String(r.overflows)) + (r.overflows_inferred ? '*' : '') : '0',
      r.drops ? c.red(String(r.drops)) : '0',
      r.syncookies === null ? '-' : r.syncookies, r.synack_retrans,
    ]),
    headers.map((h) => (['NETNS', 'LISTEN', 'COMM', 'CONTAINER'].includes(h) ? 'left' : 'right')), c,
  );
  const more = all.length > rows.length ? `(${all.length - rows.length} more listeners: --all shows every one, --port narrows)\n` : '';
  const foot = !perSyn && rows.some((r) => r.overflows_inferred) ? '* SYN-time overflows counted from the listener\'s sk_drops (no per-SYN probe on this kernel)\n' : '';
  return `${head}\n${perNs}${body}${more}${foot}\n`;
}

const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * The layout of renderTable() (columns two spaces apart, bold header, no
 * trailing blanks) without cli-table3, which measured 20 ms for a 50-row
 * table, most of synqueue's budget per interval on a 10,000-listener node.
 * Cells here are numbers, addresses and escaped names: their width is their
 * length once colour codes are left out.
 */
function alignedTable(headers: string[], rows: (string | number)[][], align: Align[], c: ChalkInstance): string {
  const cells = rows.map((r) => r.map(String));
  const widths = headers.map((h, i) => cells.reduce((w, r) => Math.max(w, r[i].replace(ANSI, '').length), h.length));
  const line = (r: string[], fmt: (s: string) => string = (s) => s) => r.map((v, i) => {
    const fill = ' '.repeat(widths[i] - v.replace(ANSI, '').length);
    return align[i] === 'right' ? fill + fmt(v) : fmt(v) + fill;
  }).join('  ').replace(/\s+$/, '') + '\n';
  return line(headers, (h) => c.bold(h)) + cells.map((r) => line(r)).join('');
}

/** One live chart per listener (accept and SYN queue, most seen each interval, against the limit). */
class ChartView {
  private readonly charts = new Map<string, LiveChart>();
  private prevLines = 0;
  constructor(private readonly ctx: ToolContext) {}

  show(report: SynqueueReport, all: boolean): void {
    const rows = report.listeners;
    // A chart takes 12 lines; the frame must fit the screen to be redrawn in place.
    const fit = all ? rows.length : Math.max(1, Math.min(4, Math.floor((screenRows(this.ctx) - 2) / 12)));
    const shown = topRows(rows, fit);
    const multiNs = new Set(rows.map((r) => r.netns)).size > 1;
    let frame = '';
    const live = new Set<string>();
    for (const r of shown) {
      const key = `${r.netns}/${labelOf(r)}`;
      live.add(key);
      let chart = this.charts.get(key);
      if (!chart) {
        chart = new LiveChart({
          title: '',
          series: [{ name: 'accept queue (max)', color: 'green' }, { name: 'SYN queue (max)', color: 'cyan' }, { name: 'accept limit', color: 'red' }],
          height: 10,
          maxPoints: Math.max(20, Math.min(120, this.ctx.out.columns - 14)),
          color: this.ctx.color.level > 0,
          format: (x) => x.toFixed(0).padStart(8),
        });
        this.charts.set(key, chart);
      }
      chart.push({ 'accept queue (max)': r.accept_queue_max, 'SYN queue (max)': r.syn_queue_max, 'accept limit': r.accept_limit });
      const title = `${multiNs ? `netns ${netnsLabel(report, r.netns)}  ` : ''}${labelOf(r)}  ${r.comm === null ? '-' : esc(r.comm)}${r.pid ? ` (${r.pid})` : ''}` +
        `${r.container ? `  container ${esc(r.container.slice(0, 12))}` : ''}  accept ${r.accept_queue}/${r.accept_limit}  syn ${r.syn_queue}/${r.syn_limit}` +
        `  overflows ${r.overflows}  drops ${r.drops}  cookies ${r.syncookies ?? '-'}`;
      frame += chart.render().replace(/^\n/, title + '\n');
    }
    // Charts of listeners no longer shown go (a listener back on screen starts afresh).
    for (const k of this.charts.keys()) if (!live.has(k)) this.charts.delete(k);
    if (rows.length > shown.length) frame += `(${rows.length - shown.length} more listeners: --port narrows, --all charts every one)\n`;
    frame += `TcpExt: ${formatNetstat(report.netstat, (s) => this.ctx.color.yellow(s))}\n`;
    const up = this.prevLines > 0 ? `\x1b[${this.prevLines}A\r\x1b[0J` : '';
    this.ctx.out.write(up + frame);
    this.prevLines = frame.split('\n').length - 1;
  }
}

/** --hist on exit: one log2 histogram per selected listener and accept limit. */
export function printHist(ctx: ToolContext, shown: QueueHistogram[]): void {
  if (ctx.opts.json) {
    ctx.out.record({
      time: new Date().toISOString(),
      histograms: shown.map((e) => ({ listener: e.listener, accept_limit: e.limit, accept_queue: log2HistToJson(e.slots) })),
    });
    return;
  }
  if (shown.length === 0) {
    ctx.out.line('no connection joined an accept queue of the selected listeners');
    return;
  }
  for (const e of shown) {
    ctx.out.line(`\nlistener ${e.listener}  backlog_max = ${e.limit}`);
    ctx.out.write(formatLog2Hist(e.slots, 'backlog'));
  }
}

/**
 * One report as one NDJSON record, in pieces to write one after the other:
 * at 10,000 listeners the record is ~3 MB, and one JSON.stringify of it
 * (then its U+2028 escaping, a copy each) kept several such strings alive at
 * once. The same bytes as ndjson(report): keys in the report's order, the
 * rows 500 at a time (a chunk whose rows are the very objects of the last
 * report's chunk is the same bytes: `chunks`). A row object the collector showed before (a listener
 * whose figures did not change: SynqueueCollector reuses its row) keeps its
 * JSON text in `texts`, so a quiet node's rows are not serialized again; as
 * UTF-8 bytes, so that they are not encoded again either (joining 10,000
 * strings and encoding the result for the pipe cost ~8 ms a report).
 */
const COMMA = Buffer.from(',');
const CHUNK_ROWS = 500;

/** A chunk of a report's rows as written, kept for the next report (whose chunk it is again when it has the same row objects). */
export interface JsonChunk { rows: ListenerRow[]; bytes: Buffer }

export function reportJsonParts(report: SynqueueReport, texts: WeakMap<ListenerRow, Buffer>, chunks?: JsonChunk[]): Buffer[] {
  const listeners = report.listeners;
  const head = ndjson({ ...report, listeners: [] });
  // head is {...,"listeners":[],"netstat":...}\n: split it at the empty array.
  const at = head.indexOf('"listeners":[]') + '"listeners":['.length;
  const parts: Buffer[] = [Buffer.from(head.slice(0, at))];
  const bufs: Uint8Array[] = [];
  for (let i = 0, c = 0; i < listeners.length; i += CHUNK_ROWS, c++) {
    const end = Math.min(i + CHUNK_ROWS, listeners.length);
    // The same rows as last report's chunk (the same objects): the same bytes.
    const last = chunks?.[c];
    if (last && last.rows.length === end - i && last.rows.every((r, k) => r === listeners[i + k])) {
      parts.push(last.bytes);
      continue;
    }
    bufs.length = 0;
    for (let k = i; k < end; k++) {
      const row = listeners[k];
      let text = texts.get(row);
      if (text === undefined) {
        text = Buffer.from(jsonText(row));
        texts.set(row, text);
      }
      if (k > 0) bufs.push(COMMA);
      bufs.push(text);
    }
    const bytes = Buffer.concat(bufs);
    if (chunks) chunks[c] = { rows: listeners.slice(i, end), bytes };
    parts.push(bytes);
  }
  if (chunks) chunks.length = Math.ceil(listeners.length / CHUNK_ROWS);
  parts.push(Buffer.from(head.slice(at)));
  return parts;
}
