// synqueue's listeners as nine metric families, at 10,000 listeners. Each
// label set (addr, port, netns: listeners sharing them with SO_REUSEPORT add
// up) is one object kept from scrape to scrape, updated in place, with its
// label text rendered once. --max-series is applied here, per listener and
// before any family is built: a listener past the limit costs its entry and
// nothing else (no sample, no label text), and is counted once as dropped in
// each of the nine families. As SeriesLimiter does it: a shown listener stays
// shown while it exists; one that goes frees its slot for the next newcomer.
import { labelText, type MetricFamily, type Sample } from '../../core/metrics/exposition.js';
import type { ListenerRow } from '../synqueue/model.js';

interface Listener {
  key: string;
  labels: { addr: string; port: string; netns: string };
  /** Rendered label set, once shown. */
  text?: string;
  /** Reading that last saw it. */
  gen: number;
  shown: boolean;
  /** Counted as dropped (once for its life). */
  droppedOnce: boolean;
  // Counters: deltas accumulated while it exists (so never backwards).
  overflows: number;
  drops: number;
  synackRetrans: number;
  // Gauges of this reading (summed, or the max, over the sockets sharing the labels).
  aq: number;
  aqMax: number;
  aqLimit: number;
  sq: number;
  sqMax: number;
  sqLimit: number;
}

type Field = 'overflows' | 'drops' | 'synackRetrans' | 'aq' | 'aqMax' | 'aqLimit' | 'sq' | 'sqMax' | 'sqLimit';

const FAMILIES: { name: string; type: 'counter' | 'gauge'; help: string; field: Field }[] = [
  { name: 'rbtrace_listen_overflows', type: 'counter', field: 'overflows', help: 'Connections refused because the accept queue was full, per TCP listener.' },
  { name: 'rbtrace_listen_drops', type: 'counter', field: 'drops', help: 'Packets the listener dropped, overflows included (its share of TcpExt ListenDrops), per TCP listener.' },
  { name: 'rbtrace_listen_synack_retransmits', type: 'counter', field: 'synackRetrans', help: 'SYN-ACKs retransmitted for connections in the SYN queue, per TCP listener.' },
  { name: 'rbtrace_listen_accept_queue_length', type: 'gauge', field: 'aq', help: 'Connections waiting in the accept queue now.' },
  { name: 'rbtrace_listen_accept_queue_max', type: 'gauge', field: 'aqMax', help: 'Longest accept queue seen since the previous collection.' },
  { name: 'rbtrace_listen_accept_queue_limit', type: 'gauge', field: 'aqLimit', help: 'Accept queue limit (the listen() backlog, capped by net.core.somaxconn).' },
  { name: 'rbtrace_listen_syn_queue_length', type: 'gauge', field: 'sq', help: 'Half-open connections in the SYN queue now.' },
  { name: 'rbtrace_listen_syn_queue_max', type: 'gauge', field: 'sqMax', help: 'Longest SYN queue seen since the previous collection.' },
  { name: 'rbtrace_listen_syn_queue_limit', type: 'gauge', field: 'sqLimit', help: 'Effective SYN queue limit (0: SYN cookies always, tcp_syncookies=2).' },
];

export class ListenerSeries {
  /** netns -> port -> addr -> its series: found without building a key string per row and reading. */
  private readonly index = new Map<number, Map<number, Map<string, Listener>>>();
  /** Every series, in the order they came (the order they are shown in). */
  private readonly byKey = new Map<string, Listener>();
  private gen = 0;
  private shownCount = 0;
  /** Listeners refused since start. */
  dropped = 0;

  constructor(private readonly maxSeries: number) {}

  /** One reading's rows in, the nine families out (only shown listeners). */
  update(rows: ListenerRow[]): MetricFamily[] {
    const gen = ++this.gen;
    for (const row of rows) {
      let ports = this.index.get(row.netns);
      if (!ports) this.index.set(row.netns, (ports = new Map()));
      let addrs = ports.get(row.port);
      if (!addrs) ports.set(row.port, (addrs = new Map()));
      let l = addrs.get(row.addr);
      if (!l) {
        const key = `${row.addr}|${row.port}|${row.netns}`;
        l = {
          key, labels: { addr: row.addr, port: String(row.port), netns: String(row.netns) }, gen: 0, shown: false, droppedOnce: false,
          overflows: 0, drops: 0, synackRetrans: 0, aq: 0, aqMax: 0, aqLimit: 0, sq: 0, sqMax: 0, sqLimit: 0,
        };
        addrs.set(row.addr, l);
        this.byKey.set(key, l);
      }
      if (l.gen !== gen) {
        l.gen = gen;
        l.aq = l.aqMax = l.aqLimit = l.sq = l.sqMax = l.sqLimit = 0;
      }
      l.overflows += row.overflows;
      l.drops += row.drops;
      l.synackRetrans += row.synack_retrans;
      l.aq += row.accept_queue;
      l.aqMax = Math.max(l.aqMax, row.accept_queue_max);
      l.aqLimit += row.accept_limit;
      l.sq += row.syn_queue;
      l.sqMax = Math.max(l.sqMax, row.syn_queue_max);
      l.sqLimit += row.syn_limit;
    }
    // Gone first (their slots free up), then newcomers while there is room.
    for (const [key, l] of this.byKey) {
      if (l.gen === gen) continue;
      if (l.shown) this.shownCount--;
      this.byKey.delete(key);
      const ports = this.index.get(Number(l.labels.netns))!;
      const addrs = ports.get(Number(l.labels.port))!;
      addrs.delete(l.labels.addr);
      if (addrs.size === 0) ports.delete(Number(l.labels.port));
      if (ports.size === 0) this.index.delete(Number(l.labels.netns));
    }
    const shown: Listener[] = [];
    for (const l of this.byKey.values()) {
      if (!l.shown) {
        if (this.shownCount >= this.maxSeries) {
          if (!l.droppedOnce) {
            l.droppedOnce = true;
            this.dropped++;
          }
          continue;
        }
        l.shown = true;
        this.shownCount++;
      }
      l.text ??= labelText(l.labels);
      shown.push(l);
    }
    const limited = { dropped: this.dropped };
    return FAMILIES.map(({ name, type, help, field }) => {
      const samples: Sample[] = new Array(shown.length);
      for (let i = 0; i < shown.length; i++) {
        const l = shown[i];
        samples[i] = { labels: l.labels, key: l.key, text: l.text, value: l[field] };
      }
      return { name, type, help, samples, limited, monotonic: type === 'counter' };
    });
  }

  /** Listeners known now (shown or not), and the index's own count (the same: nothing left behind). */
  get size(): number {
    let indexed = 0;
    for (const ports of this.index.values()) for (const addrs of ports.values()) indexed += addrs.size;
    if (indexed !== this.byKey.size) throw new Error(`listener index out of step: ${indexed} != ${this.byKey.size}`);
    return this.byKey.size;
  }
}
