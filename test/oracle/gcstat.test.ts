// Oracle: gcstat's mark count against Ruby's own GC.stat(:count), read at
// exit by a file the test makes ruby require (RUBYOPT=-r), on a script with
// threads and on rubygems' `gem list`. Both count garbage collections from
// the interpreter's start (gcstat: from the command's execve).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRbtrace } from '../helpers.js';
import { runPiped } from './oracles.js';
import { assertWithinVariance, tempDir } from './compare.js';

const dir = tempDir('gc');
const hook = join(dir, 'gcstat_at_exit.rb');
writeFileSync(hook, "at_exit { File.write(ENV['GC_OUT'], GC.stat(:count).to_s) if ENV['GC_OUT'] }\n");

const WORKLOADS: { name: string; argv: string[]; slack?: Record<string, number> }[] = [
  {
    name: 'ruby: 4 threads churning strings, 5 GC.start',
    // How many GCs 4 allocating threads trigger depends on how they
    // interleave (malloc_increase is shared): 74 in two plain runs, 94 in the
    // traced one of a CI run. The exact check is against the same run's own
    // GC.stat; across runs, this much is the program's, not rbtrace's.
    slack: { count: 30 },
    argv: ['ruby', '-e', 'ts = 4.times.map { Thread.new { a = []; 100_000.times { |i| a << "x" * (i % 50); a = [] if a.size > 5000 } } }; ts.each(&:join); 5.times { GC.start }'],
  },
  { name: 'gem list (rubygems)', argv: ['ruby', '-S', 'gem', 'list', '--local'] },
];

async function gcCountOf(argv: string[]): Promise<number> {
  const out = join(dir, `out-${Math.random()}`);
  assert.equal(await runPiped(argv, { env: { ...process.env, RUBYOPT: `-r${hook}`, GC_OUT: out } }), 0);
  return Number(readFileSync(out, 'utf8'));
}

for (const w of WORKLOADS) {
  test(`gcstat marks = GC.stat(:count): ${w.name}`, async () => {
    const o1 = await gcCountOf(w.argv);
    const o2 = await gcCountOf(w.argv);
    const out = join(dir, `rb-${Math.random()}`);
    const r = await runRbtrace(['gcstat', '--json', '--', ...w.argv], { env: { RUBYOPT: `-r${hook}`, GC_OUT: out } });
    assert.equal(r.code, 0, r.stderr);
    const marks = r.stderr.split('\n').filter((l) => l.startsWith('{"time"')).map((l) => JSON.parse(l)).filter((x) => x.mark)
      .reduce((n, x) => n + x.mark.count, 0);
    // The same run's own GC.stat: exact (the probes see every collection).
    assert.ok(marks > 0, 'some collections');
    assert.equal(marks, Number(readFileSync(out, 'utf8')), 'gcstat vs GC.stat of the same run');
    // And within the program's variance of the runs without rbtrace.
    assertWithinVariance(w.name, new Map([['count', marks]]), new Map([['count', o1]]), new Map([['count', o2]]), w.slack);
  });
}
