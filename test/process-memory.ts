// Reading a traced process's memory from a test, independently of rbtrace's
// own code: the address of a file offset through /proc/PID/maps, bytes
// through /proc/PID/mem (breakpoints, USDT semaphores).
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/** The address of file offset `off` of `file` (as the maps name it) in `pid`. */
export function addressOf(pid: number, file: string, off: number): number {
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(.*)$/.exec(line);
    if (!m || m[4] !== file) continue;
    const [start, end, mapOff] = [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
    if (off >= mapOff && off < mapOff + (end - start)) return start + (off - mapOff);
  }
  throw new Error(`${file} offset 0x${off.toString(16)} is not mapped in ${pid}`);
}

export function bytesAt(pid: number, addr: number, n: number): Buffer {
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const b = Buffer.alloc(n);
    readSync(fd, b, 0, n, addr);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The path of the first mapped file of `pid` matching `re`. */
export function mappedFile(pid: number, re: RegExp): string {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').map((l) => l.split(/\s+/).slice(5).join(' ')).find((p) => re.test(p))!;
}
