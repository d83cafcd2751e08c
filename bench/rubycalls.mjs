#!/usr/bin/env node
// bench/rubycalls: the cost per probed C-method call of rbtrace rubycalls
// against bpftrace's one-liner counting the same probe by class and method
// (`usdt:LIBRUBY:ruby:cmethod__entry { @[str(arg0), str(arg1)] = count(); }`)
// on the same ruby, and untraced, in the same run. The loop calls
// Array#sort, Integer#to_s and String#upcase: 3 cmethod__entry hits per
// iteration (no TracePoint: method__entry does not fire).
//
//   node bench/rubycalls.mjs [N] [R]       (as root, after npm run build)
//   defaults: N = 200000 iterations, R = 3 rounds (see bench/ruby-usdt.mjs)
import { bpftraceCase, compare, libruby, rbtraceCase, workload } from './ruby-usdt.mjs';

const N = Number(process.argv[2] ?? 200000);
const R = Number(process.argv[3] ?? 3);
await compare({
  work: workload('a = [3, 1, 2]; s = "ab"', `${N}.times { |i| a.sort; i.to_s; s.upcase }`),
  cases: {
    plain: null,
    rubycalls: rbtraceCase('rubycalls', []),
    bpftrace: bpftraceCase(`usdt:${libruby}:ruby:cmethod__entry { @[str(arg0), str(arg1)] = count(); }`),
  },
  rounds: R, events: N * 3, noun: 'call',
});
