// synqueue's two readings, for the exporter: the iterator snapshot of every
// listener and the per-listener counts the probes made since the last drain.
// Written against the iterator API of src/core/iter.ts; synqueue.ts has the
// same two readings inline (to be reconciled when synqueue is split into
// model/collector/views).
import type { BpfLink } from '../core/object.js';
import type { BpfMap } from '../core/maps.js';
import { possibleCpus } from '../core/maps.js';
import { readIterator, records } from '../core/iter.js';
import { listener_info_layout as infoLayout, listener_stats_layout as statsLayout } from '../generated/synqueue.js';
import { formatAddr } from './synqueue.js';

/** One listener now, as the iterator saw it (synqueue.ts's Snapshot). */
export interface ListenerSnapshot {
  sk: string;
  ino: number;
  family: number;
  addr: string;
  port: number;
  acceptQueue: number;
  acceptLimit: number;
  synQueue: number;
  skDrops: number;
}

/** What the probes counted for one listener since the last drain (synqueue.ts's Counted). */
export interface ListenerCounts {
  enqueues: number;
  overflows: number;
  drops: number;
  syncookies: number;
  synackRetrans: number;
  syns: number;
  freed: number;
  acceptMax: number;
  synMax: number;
}

export function emptyCounts(): ListenerCounts {
  return { enqueues: 0, overflows: 0, drops: 0, syncookies: 0, synackRetrans: 0, syns: 0, freed: 0, acceptMax: 0, synMax: 0 };
}

const skKey = (dv: DataView, offset: number) => dv.getBigUint64(offset, true).toString(16);

/** Run the iter/tcp program once: every listener of this task's network namespace, keyed by its struct sock address. */
export function snapshotListeners(iterLink: BpfLink): Map<string, ListenerSnapshot> {
  const out = new Map<string, ListenerSnapshot>();
  for (const rec of records(readIterator(iterLink), infoLayout.size)) {
    const i = infoLayout.decode(rec);
    const sk = skKey(rec, infoLayout.fields.sk.offset);
    out.set(sk, {
      sk, ino: i.ino, family: i.family, addr: formatAddr(i.family, i.addr), port: i.port,
      acceptQueue: i.accept_queue, acceptLimit: i.accept_limit, synQueue: i.syn_queue, skDrops: i.sk_drops,
    });
  }
  return out;
}

/** Drain the per-CPU `stats` map: per listener, counts summed and maxima folded across CPUs. */
export function drainListenerCounts(statsMap: BpfMap): Map<string, ListenerCounts> {
  const out = new Map<string, ListenerCounts>();
  const slot = (statsLayout.size + 7) & ~7;
  for (const [k, v] of statsMap.drainRaw()) {
    const c = emptyCounts();
    const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
    for (let cpu = 0; cpu < possibleCpus(); cpu++) {
      const s = statsLayout.decode(dv, cpu * slot);
      c.enqueues += s.enqueues;
      c.overflows += s.overflows;
      c.drops += s.drops;
      c.syncookies += s.syncookies;
      c.synackRetrans += s.synack_retrans;
      c.syns += s.syns;
      c.freed += s.freed;
      c.acceptMax = Math.max(c.acceptMax, s.accept_max);
      c.synMax = Math.max(c.synMax, s.syn_max);
    }
    out.set(skKey(new DataView(k.buffer, k.byteOffset, k.byteLength), 0), c);
  }
  return out;
}
