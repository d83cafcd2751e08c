// offcputime's views: the report (collect.ts) as a table of the top stacks,
// bcc offcputime -f's folded lines (values in microseconds), NDJSON and
// saved figures. Pure: no map, no /proc, no clock.
import { basename } from 'node:path';
import { escapeForTerminal } from '../../core/output/format.js';
import type { OffcpuReport, OffcpuStack } from './collect.js';
import { frameJson } from '../../core/stacks/index.js';

/** --folded: "comm;outer;...;inner US", as bcc's offcputime -f prints. */
export function foldedText(r: OffcpuReport): string {
  return r.stacks.map((s) => `${s.folded.join(';')} ${Math.round(s.total_ns / 1000)}`).sort().map((l) => `${escapeForTerminal(l)}\n`).join('');
}

export function tableText(r: OffcpuReport, top: number, c: { bold(s: string): string; dim(s: string): string }): string {
  if (r.stacks.length === 0) return '\nNo blocked time (no traced thread blocked long enough).\n';
  const shown = r.stacks.slice(0, top);
  let out = `\n${(r.total_ns / 1e6).toFixed(3)} ms blocked in ${r.stacks.length} distinct stacks; the top ${shown.length}, innermost frame first:\n`;
  for (const s of shown) {
    const pids = s.pids.length === 1 ? `pid ${s.pids[0]}` : `${s.pids.length} processes`;
    out += `\n${c.bold(`${(s.total_ns / 1e6).toFixed(3)} ms in ${s.count} blocks (${((100 * s.total_ns) / r.total_ns).toFixed(1)}%)  ${escapeForTerminal(s.comm)} [${pids}]${s.state ? ` ${s.state}` : ''}`)}\n`;
    for (const f of s.frames) {
      const where = f.kernel ? '[k]' : f.module ? basename(f.module) : '';
      out += `    ${escapeForTerminal(f.name)}${where ? c.dim(`  ${escapeForTerminal(where)}`) : ''}\n`;
    }
    if (s.truncated) out += c.dim('    ... (probably cut short: code without frame pointers)') + '\n';
  }
  return out;
}

export function record(r: OffcpuReport, seconds: number): object {
  return {
    time: new Date().toISOString(), seconds: Number(seconds.toFixed(3)), total_ns: r.total_ns,
    stack_errors: r.stackErrors, dropped: r.dropped, unpaired: r.unpaired,
    stacks: r.stacks.map((s: OffcpuStack) => ({ comm: s.comm, state: s.state, pids: s.pids, total_ns: s.total_ns, count: s.count, truncated: s.truncated, frames: s.frames.map(frameJson) })),
  };
}
