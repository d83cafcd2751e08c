// Histogram rendering in the exact layout of bcc libbpf-tools' trace_helpers.c
// (print_log2_hist / print_linear_hist), so that rbtrace output can be diffed
// against bcc's and users' muscle memory (and scripts) keep working.
//
// Counts are read from BPF maps as u64, so they can exceed 2^32 (the C code
// uses unsigned int and would overflow); all arithmetic on counts and on slot
// bounds is done with BigInt so that 2^40 counts and slot 63 (2^64-1) print
// exactly.
//
// Every function that returns text returns complete lines, each ending in
// '\n', or '' when there is nothing to print.

/** A bucket count: numbers from JS, or bigints straight from a u64 map value. */
export type Count = number | bigint;

function toBig(v: Count): bigint {
  if (typeof v === 'bigint') return v;
  // Negative or fractional counts are caller bugs; clamp rather than throw so a
  // live tool keeps printing.
  if (!Number.isFinite(v) || v <= 0) return 0n;
  return BigInt(Math.trunc(v));
}

function padLeft(s: string, width: number): string {
  return s.length >= width ? s : ' '.repeat(width - s.length) + s;
}

function padRight(s: string, width: number): string {
  return s.length >= width ? s : s + ' '.repeat(width - s.length);
}

/** print_stars(): `width` columns of '*' scaled to valMax, '+' if val overflows. */
function stars(val: bigint, valMax: bigint, width: number): string {
  const n = valMax === 0n ? 0 : Number(((val < valMax ? val : valMax) * BigInt(width)) / valMax);
  return '*'.repeat(n) + ' '.repeat(width - n) + (val > valMax ? '+' : '');
}

/** Bounds of log2 slot i, as print_log2_hist computes them (slot 0 is 0..1). */
function slotBounds(i: number): { low: bigint; high: bigint } {
  const mask = (1n << 64n) - 1n; // emulate unsigned long long wrap for i = 63
  let low = ((1n << BigInt(i + 1)) >> 1n) & mask;
  const high = ((1n << BigInt(i + 1)) - 1n) & mask;
  if (low === high) low -= 1n;
  return { low, high };
}

/**
 * bcc's print_log2_hist(): every slot from 0 to the last non-zero one.
 * The narrow layout (widths 10, 40 stars) switches to the wide one (widths 20,
 * 20 stars) when a slot above 32 is in use, exactly like bcc.
 */
export function formatLog2Hist(buckets: ArrayLike<Count>, unit: string): string {
  const vals = Array.from(buckets, toBig);
  let idxMax = -1;
  let valMax = 0n;
  for (let i = 0; i < vals.length; i++) {
    if (vals[i] > 0n) idxMax = i;
    if (vals[i] > valMax) valMax = vals[i];
  }
  if (idxMax < 0) return '';

  const narrow = idxMax <= 32;
  const starsMax = narrow ? 40 : 20;
  const width = narrow ? 10 : 20;
  let out = ' '.repeat(narrow ? 5 : 15) + padRight(unit, narrow ? 19 : 29) + ' : count    distribution\n';
  for (let i = 0; i <= idxMax; i++) {
    const { low, high } = slotBounds(i);
    out += `${padLeft(low.toString(), width)} -> ${padRight(high.toString(), width)} : ${padRight(vals[i].toString(), 8)} |`;
    out += stars(vals[i], valMax, starsMax) + '|\n';
  }
  return out;
}

/**
 * bcc's print_linear_hist(): slot i is the value base + i*step. Like bcc, only
 * non-zero slots between the first and the last non-zero one are printed.
 */
export function formatLinearHist(buckets: ArrayLike<Count>, base: number, step: number, unit: string): string {
  const vals = Array.from(buckets, toBig);
  let idxMin = -1;
  let idxMax = -1;
  let valMax = 0n;
  for (let i = 0; i < vals.length; i++) {
    if (vals[i] > 0n) {
      idxMax = i;
      if (idxMin < 0) idxMin = i;
    }
    if (vals[i] > valMax) valMax = vals[i];
  }
  if (idxMax < 0) return '';

  let out = `     ${padRight(unit, 13)} : count     distribution\n`;
  for (let i = idxMin; i <= idxMax; i++) {
    if (vals[i] === 0n) continue;
    out += `        ${padRight(String(base + i * step), 10)} : ${padRight(vals[i].toString(), 8)} |`;
    out += stars(vals[i], valMax, 40) + '|\n';
  }
  return out;
}

export interface Log2Bucket {
  low: number;
  high: number;
  count: number;
}

/**
 * The log2 histogram as data for --json: from the first to the last non-zero
 * slot (zeros in between kept, so consumers see the shape). Bounds are the
 * ones print_log2_hist shows; beyond 2^53 they are rounded to doubles.
 */
export function log2HistToJson(buckets: ArrayLike<Count>): Log2Bucket[] {
  const vals = Array.from(buckets, toBig);
  const first = vals.findIndex((v) => v > 0n);
  if (first < 0) return [];
  let last = vals.length - 1;
  while (vals[last] === 0n) last--;
  const out: Log2Bucket[] = [];
  for (let i = first; i <= last; i++) {
    const { low, high } = slotBounds(i);
    out.push({ low: Number(low), high: Number(high), count: Number(vals[i]) });
  }
  return out;
}

/**
 * The slot of a log2 histogram that holds the p-th percentile (p in
 * 0..100): the first in which the cumulative count reaches p% of the total.
 * Its bounds are what the histogram draws for it. undefined when empty.
 */
export function log2PercentileSlot(buckets: ArrayLike<Count>, p: number): { low: number; high: number } | undefined {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const vals = Array.from(buckets, toBig);
  const total = vals.reduce((a, b) => a + b, 0n);
  if (total === 0n) return undefined;
  // Smallest rank r (1-based) with r >= p% of total, but at least 1 so that p=0
  // picks the first non-empty slot. Scaled by 1e6 to keep fractional p exact enough.
  const scaled = BigInt(Math.round(p * 1e6));
  let rank = (total * scaled + 100_000_000n - 1n) / 100_000_000n;
  if (rank < 1n) rank = 1n;
  let cum = 0n;
  let i = 0;
  for (; i < vals.length - 1; i++) {
    cum += vals[i];
    if (cum >= rank) break;
  }
  const { low, high } = slotBounds(i);
  return { low: Number(low), high: Number(high) };
}

/**
 * ESTIMATE of the p-th percentile (p in 0..100) from a log2 histogram: the
 * upper bound of the slot in which the cumulative count reaches p% of the
 * total. Log2 buckets are coarse, so the true value lies somewhere in
 * [low, high] of that slot; the upper bound is reported so that the estimate
 * never understates latency. Returns NaN for an empty histogram.
 */
export function log2Percentile(buckets: ArrayLike<Count>, p: number): number {
  return log2PercentileSlot(buckets, p)?.high ?? NaN;
}

/**
 * The slot the BPF side computes with log2l() from bits.bpf.h: floor(log2(v)),
 * with 0 and 1 both in slot 0. Accepts bigint so u64 values keep full precision.
 */
export function log2Slot(v: number | bigint): number {
  if (typeof v === 'bigint') {
    if (v <= 1n) return 0;
    return Math.min(v.toString(2).length - 1, 63);
  }
  if (!(v > 1)) return 0; // also NaN and negatives
  if (v < 2 ** 32) return 31 - Math.clz32(v);
  // Split like log2l(): hi word first. Doubles >= 2^32 are exact in their hi word.
  const hi = Math.floor(v / 2 ** 32);
  return Math.min(32 + 31 - Math.clz32(hi >= 2 ** 32 ? 0xffffffff : hi), 63);
}
