// perf report as an oracle for profile's shares (perf record --call-graph dwarf data).
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { runRbtrace, type Finished } from '../helpers.js';

/** perf report's self share (percent) per symbol, as perf names (demangles) it. */
export function perfShares(data: string): Map<string, number> {
  const out = execFileSync('perf', ['report', '-i', data, '--no-children', '--sort', 'sym', '--stdio', '-g', 'none'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const m = new Map<string, number>();
  for (const line of out.split('\n')) {
    const r = /^\s+([\d.]+)%\s+\[[.k]\]\s+(\S+)/.exec(line);
    if (r) m.set(r[2], Number(r[1]));
  }
  return m;
}

/**
 * rbtrace profile --unwind dwarf and perf record --call-graph dwarf on the
 * same process at the same time and rate: rbtrace's result and perf's shares.
 * 999 Hz: the target may get a tenth of a CPU on a busy 2-core machine (other
 * tests run), and still gives hundreds of samples in 5 s.
 */
export async function profileBesidePerf(pid: number, dir: string, output: '--json' | '--folded', secs = 5): Promise<{ r: Finished; perf: Map<string, number> }> {
  const hz = '999';
  const data = join(dir, 'perf.data');
  const perf = spawn('perf', ['record', '-q', '-F', hz, '--call-graph', 'dwarf', '-o', data, '-p', String(pid), '--', 'sleep', String(secs)], { stdio: 'ignore' });
  const perfDone = new Promise((res) => perf.on('exit', res));
  const r = await runRbtrace(['profile', '--unwind', 'dwarf', '-F', hz, output, '-p', String(pid), '-d', String(secs)]);
  await perfDone;
  return { r, perf: perfShares(data) };
}
