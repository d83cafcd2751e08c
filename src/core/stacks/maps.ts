// A process's memory map, as the stack symbolizer needs it: every mapping
// (file-backed or not: an address in an anonymous executable mapping is JIT
// code, not a broken unwind) with its start, end and file offset.
import { readFileSync } from 'node:fs';
import type { Mapping } from '../linux/procfiles.js';

export interface Region extends Mapping {
  start: number;
  end: number;
  /** File offset of `start`. */
  offset: number;
  /** Backed by a file rbtrace can read symbols from. */
  file: boolean;
}

const LINE = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)\s*(.*)$/;

/** Parse /proc/PID/maps text; user addresses fit a double (47-57 bits). */
export function parseMaps(text: string): Region[] {
  const out: Region[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const name = m[8];
    const deleted = name.endsWith(' (deleted)');
    const path = deleted ? name.slice(0, -' (deleted)'.length) : name;
    out.push({
      range: `${m[1]}-${m[2]}`, start: parseInt(m[1], 16), end: parseInt(m[2], 16), perms: m[3], offset: parseInt(m[4], 16),
      major: parseInt(m[5], 16), minor: parseInt(m[6], 16), inode: BigInt(m[7]), path, deleted,
      file: m[7] !== '0' && path.startsWith('/'),
    });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** /proc/PID/maps now, or undefined if the process is gone (or not ours to read). */
export function readRegions(pid: number): Region[] | undefined {
  try {
    return parseMaps(readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The region holding `addr` (binary search over sorted, disjoint regions). */
export function findRegion(regions: readonly Region[], addr: number): Region | undefined {
  let lo = 0;
  let hi = regions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = regions[mid];
    if (addr < r.start) hi = mid - 1;
    else if (addr >= r.end) lo = mid + 1;
    else return r;
  }
  return undefined;
}
