// mallocstat's views: a report (collect.ts) as the per-function table and
// size histogram, NDJSON records, and --leaks' blocks by stack. No map
// access here.
import type { UnwindMode } from '../../core/unwind/option.js';
import { formatLog2Hist, log2HistToJson } from '../../core/output/histogram.js';
import { formatBytes, formatCount, formatDuration, plural, term } from '../../core/output/format.js';
import { cgroupSuffix, type CgroupFields } from '../../core/linux/cgroup.js';
import { renderTable } from '../../core/output/table.js';
import type { Frame } from '../../core/stacks/index.js';
import type { ToolContext } from '../../core/tool.js';
import { displayName, type ProbedFunction } from './allocator.js';
import { ZERO, type LeakReport, type Report } from './collect.js';

/** Stack groups printed as text by default (-T sets it; --json has them all). */
export const TEXT_GROUPS = 20;

export function functionsJson(r: Report, probed: ProbedFunction[]): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const p of probed) {
    const s = r.stats.get(p.id) ?? ZERO;
    const f: Record<string, unknown> = { count: s.count, bytes: s.bytes };
    if (p.reported) {
      f.total_ns = s.total_ns;
      f.timed = s.timed;
      f.avg_ns = s.timed ? Math.round(s.total_ns / s.timed) : 0;
      f.max_ns = s.max_ns;
    }
    if (p.aliases.length) f.aliases = p.aliases;
    out[p.name] = f;
  }
  return out;
}

export function renderReport(ctx: ToolContext, r: Report, probed: ProbedFunction[], perProcess: boolean, cg: CgroupFields = {}): string {
  let text = '';
  if (perProcess) text += ctx.color.bold(term`PID ${r.pid} (${r.comm ?? '?'})` + cgroupSuffix(cg, Boolean(ctx.target.cgroup))) + '\n';
  const anyTimed = probed.some((p) => p.reported);
  const headers = ['FUNC', 'CALLS', 'BYTES', ...(anyTimed ? ['AVG', 'MAX', 'TOTAL'] : [])];
  const rows = probed.map((p) => {
    const s = r.stats.get(p.id) ?? ZERO;
    const row: string[] = [displayName(p), formatCount(s.count), p.name === 'free' ? '-' : formatBytes(s.bytes)];
    if (anyTimed) {
      if (p.reported && s.timed > 0) row.push(formatDuration(s.total_ns / s.timed), formatDuration(s.max_ns), formatDuration(s.total_ns));
      else row.push('-', '-', '-');
    }
    return row;
  });
  text += renderTable(headers, rows, { align: headers.map((_, i) => (i === 0 ? 'left' : 'right')), color: ctx.color });
  const hist = formatLog2Hist(r.sizes, 'bytes');
  if (hist) text += '\n' + hist;
  return text;
}

/** One NDJSON record: a report (all processes, or one with -P), and the leaks when they go with it. */
export function reportRecord(r: Report, probed: ProbedFunction[], m: {
  time: Date; pid: number | null; perProcess: boolean; cg: CgroupFields; intervalS?: number; leaks?: Record<string, unknown>; final: boolean;
}): Record<string, unknown> {
  const rec: Record<string, unknown> = { time: m.time.toISOString(), pid: m.pid };
  if (m.perProcess) Object.assign(rec, { comm: r.comm, ...m.cg });
  if (m.intervalS !== undefined) rec.interval_s = m.intervalS;
  rec.functions = functionsJson(r, probed);
  rec.sizes = log2HistToJson(r.sizes);
  if (m.leaks) Object.assign(rec, m.leaks);
  if (m.final) rec.final = true;
  return rec;
}

function frameJson(f: Frame): Record<string, unknown> {
  return {
    function: f.name,
    ...(f.module ? { module: f.module } : {}),
    address: `0x${f.addr.toString(16)}`,
    ...(f.offset !== undefined ? { offset: f.offset } : {}),
  };
}

/** --json: `leaks` is the groups, largest first; each has stack (innermost first), count and bytes. */
export function leaksJson(r: LeakReport, maxAllocs: number): Record<string, unknown> {
  return {
    leaks: r.groups.map((g) => ({
      ...(g.pid !== undefined ? { pid: g.pid } : {}),
      stack: g.stack.frames.map(frameJson),
      ...(g.stack.truncated ? { truncated: true } : {}),
      count: g.count,
      bytes: g.bytes,
    })),
    leaked: { count: r.count, bytes: r.bytes, max_allocs: maxAllocs, untracked: r.dropped, lost_stacks: r.lostStacks },
  };
}

/** Text: one block per stack, memleak's layout. */
export function renderLeaks(ctx: ToolContext, r: LeakReport, opts: { olderS?: number; top?: number; unwind?: UnwindMode }): string {
  const shown = opts.top ?? TEXT_GROUPS;
  const older = opts.olderS ? ` older than ${opts.olderS} s` : '';
  let text = ctx.color.bold(`Not freed${older}: ${plural(r.count, 'allocation')}, ${formatBytes(r.bytes)}`) +
    (r.groups.length ? `, from ${plural(r.groups.length, 'stack')} (largest first)` : '') + '\n';
  for (const g of r.groups.slice(0, shown)) {
    const pid = g.pid !== undefined ? term` (pid ${g.pid})` : '';
    text += `  ${formatBytes(g.bytes)} in ${plural(g.count, 'allocation')}${pid} from:\n`;
    if (!g.stack.frames.length) text += '    [lost stack]\n';
    for (const f of g.stack.frames) {
      const off = f.offset !== undefined ? `+0x${f.offset.toString(16)}` : '';
      const mod = f.module ? ctx.color.dim(term` [${f.module}]`) : '';
      text += term`    ${f.name}` + off + mod + '\n';
    }
    if (g.stack.truncated) text += ctx.color.dim(`    [stack cut short: ${opts.unwind === 'dwarf' ? 'the stack copy or a module\'s CFI ended early' : 'frame pointers missing?'}]`) + '\n';
  }
  if (r.groups.length > shown) text += ctx.color.dim(`  ... ${plural(r.groups.length - shown, 'more stack')} (-T N shows more, --json lists every one)`) + '\n';
  return text;
}

/** The one-line warnings of a leak report: the cap hit, stacks lost. */
export function leakWarnings(r: LeakReport, maxAllocs: number): string[] {
  const out: string[] = [];
  if (r.dropped) out.push(`${plural(r.dropped, 'allocation')} not tracked: --max-allocs ${formatCount(maxAllocs)} reached (raise --max-allocs)`);
  if (r.lostStacks) out.push(`${plural(r.lostStacks, 'stack')} could not be stored (shown as [lost stack])`);
  return out;
}
