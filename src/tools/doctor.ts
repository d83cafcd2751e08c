// rbtrace doctor: what this kernel offers, found by trying each attach kind,
// and what each tool would use here.
import type { Command } from 'commander';
import { defineTool } from '../core/tool.js';
import { libbpf } from '../core/ffi/libbpf.js';
import { ATTACH_KINDS, probeAttachKind, probeBpffs, probeBtf, probeRingBuffer, probeTracefs, type Feature } from '../core/features.js';
import { kernelRelease, privileges } from '../core/system.js';
import { renderTable } from '../core/output/table.js';
import { escapeForTerminal } from '../core/output/format.js';
import { TOOLS } from './registry.js';
import { cgroupLayout, type CgroupLayout } from '../core/cgroup.js';
import { listNetns } from '../core/netns.js';

interface DoctorReport {
  kernel: string;
  arch: string;
  libbpf: string;
  privileges: ReturnType<typeof privileges>;
  features: Feature[];
  attach: Feature[];
  tools: { name: string; available: boolean; path?: string; detail?: string }[];
  /** cgroup layout (for --cgroup): v1, v2, hybrid or none, and where v2 is mounted. */
  cgroups: CgroupLayout;
  /** Network namespaces seen (those with a process rbtrace may inspect, and ip netns names): synqueue walks each. */
  network_namespaces: number;
}

export default defineTool<{ json?: boolean; color?: boolean }>({
  name: 'doctor',
  summary: 'what this kernel offers rbtrace, and what each tool would use',
  traces: false,
  options(cmd: Command) {
    cmd.option('--json', 'one JSON object on stdout').option('--no-color', 'no colour');
  },
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
      for (const entry of TOOLS) {
        let def;
        try {
          def = await entry.load();
        } catch (err) {
          report.tools.push({ name: entry.name, available: false, detail: `cannot load the tool: ${(err as Error).message}` });
          continue;
        }
        if (!def.probe) continue;
        try {
          report.tools.push({ name: def.name, available: true, path: def.probe() });
        } catch (err) {
          report.tools.push({ name: def.name, available: false, detail: (err as Error).message });
        }
      }
    }
    if (opts.json) {
      ctx.out.record(report);
      return;
    }
    const c = ctx.color;
    const yes = (ok: boolean) => (ok ? c.green('yes') : c.red('no'));
    ctx.out.line(`kernel      ${report.kernel} (${report.arch})`);
    ctx.out.line(`libbpf      ${report.libbpf}`);
    ctx.out.line(`privileges  ${priv.root ? 'root' : 'not root'}; CAP_BPF ${yes(priv.capBpf)}, CAP_PERFMON ${yes(priv.capPerfmon)}, CAP_SYS_ADMIN ${yes(priv.capSysAdmin)}`);
    ctx.out.line(cgroupsLine(report.cgroups));
    ctx.out.line(`netns       ${report.network_namespaces} network namespace${report.network_namespaces === 1 ? '' : 's'} seen (synqueue walks each)`);
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
    ctx.out.write(renderTable(['TOOL', 'OK', 'PATH / WHY NOT'], report.tools.map((t) => [t.name, yes(t.available), t.path ?? t.detail ?? ''])));
  },
});

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
