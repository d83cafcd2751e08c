#!/usr/bin/env node
// bench/rubyobjnew-window: what `rubyobjnew --window` costs an
// allocation-heavy ruby, against the same program untraced, in the same
// run; and what the probes cost while they are live (the same workload, 1 %
// of the iterations, with the probes attached all along), for scale.
//
// --window keeps the probes attached and lowers their USDT semaphores
// between windows (src/core/bpf/usdt-windows.ts), so Ruby skips the probe
// sites: no trap outside the windows. The design it replaces, detaching
// between windows, measured here at 1140 ms per detach (5 probes, libbpf
// 1.1): a window could not be shorter than a second.
//
//   node bench/rubyobjnew-window.mjs [N] [R]    (as root, after npm run build)
//   defaults: N = 5000000 iterations (4 probed allocations each), R = 3 rounds
import { once, rbtraceCase, workload } from './ruby-usdt.mjs';

const N = Number(process.argv[2] ?? 5000000);
const R = Number(process.argv[3] ?? 3);
const prelude = 'class Foo; def initialize(i) = @i = i; end';
const loop = (n) => `${n}.times { |i| s = "abc"; a = [i, s]; h = { k: a }; Foo.new(h) }`;
const cases = {
  plain: [N, null],
  '--window 10 (every 1000 ms)': [N, rbtraceCase('rubyobjnew', ['--window', '10'])],
  '--window 10 --every 100': [N, rbtraceCase('rubyobjnew', ['--window', '10', '--every', '100'])],
  'attached all along (N/100)': [N / 100, rbtraceCase('rubyobjnew', [])],
};
const best = {};
for (let r = 0; r < R; r++) {
  for (const [name, [n, argv]] of Object.entries(cases)) {
    const t = await once(workload(prelude, loop(n)), argv);
    const perIter = t.wall / n;
    if (!best[name] || perIter < best[name].perIter) best[name] = { ...t, n, perIter };
  }
}
const plain = best.plain.perIter;
console.log(`${N} iterations x 4 probed allocations, best of ${R} (the all-along case runs N/100 and is scaled per iteration)`);
for (const [name, t] of Object.entries(best)) {
  console.log(`${name.padEnd(28)} wall ${t.wall.toFixed(3)} s for ${t.n}  ${(t.perIter * 1e9 / 4).toFixed(0)} ns per allocation  x${(t.perIter / plain).toFixed(3)} of plain`);
}
