// rbtrace doctor: what this kernel offers, found by trying each attach kind,
// and what each tool would use here.
import { defineTool, type ToolDefinition } from '../core/tool.js';
import { libbpf } from '../core/ffi/libbpf.js';
import { ATTACH_KINDS, probeAttachKind, probeBpffs, probeBtf, probeRingBuffer, probeTracefs, type Feature } from '../core/bpf/features.js';
import { kernelRelease, privileges } from '../core/linux/system.js';
import { renderTable, wrapText } from '../core/output/table.js';
import { escapeForTerminal, plural, styled, term } from '../core/output/format.js';
import { cgroupLayout, type CgroupLayout } from '../core/linux/cgroup.js';
import { listNetns } from '../core/linux/netns.js';

interface DoctorReport {
  kernel: string;
  arch: string;
  libbpf: string;
  privileges: ReturnType<typeof privileges>;
  features: Feature[];
  attach: Feature[];
  tools: { name: string; available: boolean; path?: string; detail?: string; min_kernel?: { best: string; fallback?: string } }[];
  /** cgroup layout (for --cgroup): v1, v2, hybrid or none, and where v2 is mounted. */
  cgroups: CgroupLayout;
  /** Network namespaces seen (those with a process rbtrace may inspect, and ip netns names): synqueue walks each. */
  network_namespaces: number;
}

/** A tool doctor asks about: the registry's entries (src/tools/registry.ts), given by it. */
export interface ToolLoader {
  name: string;
  load: () => Promise<ToolDefinition<any>>;
}

/** The doctor command, asking each of `tools` what it would use here. */
export const doctorTool = (tools: readonly ToolLoader[]) => defineTool<{ json?: boolean; color?: boolean }>({
  name: 'doctor',
  summary: 'what this kernel offers rbtrace, and what each tool would use',
  traces: false,
  async run(ctx, opts) {
    const priv = privileges();
    const report: DoctorReport = {
      kernel: kernelRelease(),
      arch: process.arch,
      libbpf: safeVersion(),
      privileges: priv,
      features: [probeBtf(), probeTracefs(), probeRingBuffer(), probeBpffs()],
      attach: [],
      tools: [],
      cgroups: cgroupLayout(),
      network_namespaces: listNetns().size,
    };
    if (priv.sufficient && report.features[0].available) {
      report.attach = ATTACH_KINDS.map(probeAttachKind);
      for (const entry of tools) {
        let def;
        try {
          def = await entry.load();
        } catch (err) {
          report.tools.push({ name: entry.name, available: false, detail: `cannot load the tool: ${(err as Error).message}` });
          continue;
        }
        if (!def.probe) continue;
        try {
          report.tools.push({ name: def.name, available: true, path: def.probe(), ...minKernel(def) });
        } catch (err) {
          report.tools.push({ name: def.name, available: false, detail: (err as Error).message, ...minKernel(def) });
        }
      }
    }
    if (opts.json) {
      ctx.out.record(report);
      return;
    }
    const c = ctx.color;
    const yes = (ok: boolean) => styled(ok ? c.green('yes') : c.red('no'));
    ctx.out.line(term`kernel      ${report.kernel} (${report.arch})`);
    ctx.out.line(term`libbpf      ${report.libbpf}`);
    ctx.out.line(term`privileges  ${priv.root ? 'root' : 'not root'}; CAP_BPF ${yes(priv.capBpf)}, CAP_PERFMON ${yes(priv.capPerfmon)}, CAP_SYS_ADMIN ${yes(priv.capSysAdmin)}`);
    ctx.out.line(cgroupsLine(report.cgroups));
    ctx.out.line(`netns       ${plural(report.network_namespaces, 'network namespace')} seen (synqueue walks each)`);
    ctx.out.line('');
    ctx.out.write(renderTable(['FEATURE', 'OK', 'DETAIL'], report.features.map((f) => [f.name, yes(f.available), f.detail])));
    if (!priv.sufficient) {
      ctx.out.line('');
      ctx.out.line('attach kinds and tools not probed: loading BPF needs root, or CAP_BPF and CAP_PERFMON (run with sudo)');
      return;
    }
    ctx.out.line('');
    ctx.out.write(renderTable(['ATTACH', 'OK', 'DETAIL'], report.attach.map((f) => [f.name, yes(f.available), f.detail])));
    ctx.out.line('');
    // The reasons can be long (a path, what it runs without, why): wrapped
    // in their cell, so that the table fits the terminal (80 columns off one).
    const width = terminalWidth();
    ctx.out.write(renderTable(['TOOL', 'OK', 'PATH / WHY NOT', 'MIN KERNEL: BEST / FALLBACK'],
      report.tools.map((t) => [t.name, yes(t.available), t.path ?? t.detail ?? '', minKernelCell(t.min_kernel)]),
      { fit: { width, wrap: [2, 3] } }));
    const prose = (text: string) => wrapText(text, width - 1).forEach((l) => ctx.out.line(l));
    prose(`MIN KERNEL: the oldest kernel each path needs; tested on ${TESTED_KERNELS} (test/vm), nothing older than ${TESTED_KERNELS.split(', ')[0]}.`);
    const runs = report.tools.filter((t) => t.available).map((t) => t.name);
    const not = report.tools.filter((t) => !t.available).map((t) => t.name);
    ctx.out.line('');
    prose(`as ${priv.root ? 'root' : 'this user'}: ${runs.length ? `${runs.join(', ')} can run` : 'no tool can run'}` +
      (not.length ? `; ${not.join(', ')} cannot${!priv.uprobes ? ' (uprobes and USDT need CAP_SYS_ADMIN)' : ''}` : ''));
  },
});

// ---- MIN KERNEL column ----
/** The kernels the kernel matrix (test/vm) runs, oldest first. */
const TESTED_KERNELS = '5.10, 6.1, 6.12';

function minKernel(def: { kernels?: { best: string; fallback?: string } }): { min_kernel?: { best: string; fallback?: string } } {
  return def.kernels ? { min_kernel: def.kernels } : {};
}

function minKernelCell(k: { best: string; fallback?: string } | undefined): string {
  if (!k) return '';
  return k.fallback ? `${k.best} / ${k.fallback}` : k.best;
}

/** The terminal's width; off a terminal, $COLUMNS or 80. */
function terminalWidth(): number {
  return process.stdout.isTTY && process.stdout.columns ? process.stdout.columns : Number(process.env.COLUMNS) || 80;
}

function cgroupsLine(l: CgroupLayout): string {
  const where = l.v2Mount ? `, v2 at ${escapeForTerminal(l.v2Mount)}` : ', no cgroup v2: --cgroup cannot work';
  return `cgroups     ${l.kind}${where}`;
}

function safeVersion(): string {
  try {
    return libbpf.versionString();
  } catch (err) {
    return `not loadable: ${(err as Error).message}`;
  }
}
