// Is a difference between two log2 histograms a change, or noise?
//
// The method (documented in man rbtrace-diff): a two-sided Mann-Whitney U test
// on the bucket counts, every sample in one log2 bucket being a tie (normal
// approximation with the tie correction), AND an effect size, Cliff's delta
// (P(after > before) - P(after < before), over buckets), of at least 0.147 in
// absolute value, the "small" threshold of Romano et al. (2006). The test alone
// is not enough: with a million calls per side, a shift of a few per cent of
// the samples by one bucket is "significant" and meaningless. Below
// MIN_SAMPLES per side nothing is judged ("too few samples"): the normal
// approximation is poor there and a log2 histogram of a few calls says little.
//
// Only rank information is used, which is all log2 buckets keep; the test is
// conservative with ties (whole buckets), so a reported change is a real one.

export const MIN_SAMPLES = 30;
export const ALPHA = 0.001;
export const MIN_EFFECT = 0.147;

/** higher/lower: the after-distribution is shifted up/down (slower/faster, for latencies). */
export type Verdict = 'higher' | 'lower' | 'no-change' | 'too-few-samples';

export interface Comparison {
  before_n: number;
  after_n: number;
  /** Cliff's delta of after against before: > 0 means after is larger. */
  cliffs_delta: number;
  /** Two-sided p-value of the Mann-Whitney U test (NaN when not computed). */
  p_value: number;
  verdict: Verdict;
}

/** erfc(x) for x >= 0 (W. J. Cody's rational Chebyshev fit via Numerical Recipes' erfcc: |error| < 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

/** Compare two histograms given as counts per log2 slot (same slot numbering). */
export function compareHistograms(before: number[], after: number[]): Comparison {
  const len = Math.max(before.length, after.length);
  const a = Array.from({ length: len }, (_, i) => before[i] ?? 0);
  const b = Array.from({ length: len }, (_, i) => after[i] ?? 0);
  const n1 = a.reduce((s, v) => s + v, 0);
  const n2 = b.reduce((s, v) => s + v, 0);
  const base = { before_n: n1, after_n: n2 };
  if (n1 < MIN_SAMPLES || n2 < MIN_SAMPLES) return { ...base, cliffs_delta: NaN, p_value: NaN, verdict: 'too-few-samples' };

  // Pairs (before x, after y) with y > x, y < x; the rest are ties (same bucket).
  let greater = 0;
  let less = 0;
  let belowA = 0; // before-samples in lower buckets than i
  for (let i = 0; i < len; i++) {
    greater += b[i] * belowA;
    belowA += a[i];
  }
  let aboveA = 0;
  for (let i = len - 1; i >= 0; i--) {
    less += b[i] * aboveA;
    aboveA += a[i];
  }
  const pairs = n1 * n2;
  const delta = (greater - less) / pairs;

  // U of the after-sample, its mean and variance with the tie correction.
  const u = greater + (pairs - greater - less) / 2;
  const n = n1 + n2;
  let tieSum = 0;
  for (let i = 0; i < len; i++) {
    const t = a[i] + b[i];
    tieSum += t * t * t - t;
  }
  const variance = (pairs / 12) * ((n + 1) - tieSum / (n * (n - 1)));
  // Everything in one bucket on both sides: no evidence of any difference.
  const p = variance > 0 ? Math.min(1, erfc(Math.abs(u - pairs / 2) / Math.sqrt(variance) / Math.SQRT2)) : 1;
  const changed = p < ALPHA && Math.abs(delta) >= MIN_EFFECT;
  return { ...base, cliffs_delta: delta, p_value: p, verdict: changed ? (delta > 0 ? 'higher' : 'lower') : 'no-change' };
}
