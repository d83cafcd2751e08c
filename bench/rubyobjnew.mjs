#!/usr/bin/env node
// bench/rubyobjnew: how much slower an allocation-heavy Ruby program runs
// under rbtrace rubyobjnew, with --sample 100 and without sampling, against
// the same program untraced and under bpftrace's count one-liner on the same
// probes (the floor: the trap and nothing else), in the same run. Each
// iteration allocates a string literal, an array, a hash and an object (4
// probed allocations). Every probe hit traps into the kernel, sampled or not:
// sampling saves only what the BPF program does after the trap.
//
//   node bench/rubyobjnew.mjs [N] [R]      (as root, after npm run build)
//   defaults: N = 300000 iterations, R = 3 rounds (see bench/ruby-usdt.mjs)
import { bpftraceCase, compare, libruby, rbtraceCase, workload } from './ruby-usdt.mjs';

const N = Number(process.argv[2] ?? 300000);
const R = Number(process.argv[3] ?? 3);
await compare({
  work: workload('class Foo; def initialize(i) = @i = i; end', `${N}.times { |i| s = "abc"; a = [i, s]; h = { k: a }; Foo.new(h) }`),
  cases: {
    plain: null,
    'rubyobjnew --sample 100': rbtraceCase('rubyobjnew', ['--sample', '100']),
    'rubyobjnew': rbtraceCase('rubyobjnew', []),
    'rubyobjnew --site': rbtraceCase('rubyobjnew', ['--site']),
    bpftrace: bpftraceCase(`usdt:${libruby}:ruby:*__create { @ = count(); }`),
  },
  rounds: R, events: N * 4, noun: 'allocation',
});
