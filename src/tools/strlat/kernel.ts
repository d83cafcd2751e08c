// strlat --kfunc: a kernel function's latency. fentry/fexit where the kernel
// lets BPF trampolines attach (5.5+, the function in BTF), else a kprobe and
// a kretprobe (any function in kallsyms that is not notrace), chosen by
// really loading and attaching each in turn (src/core/paths.ts). RBTRACE_ATTACH
// / --attach force one of them (the kernel matrix checks both).
import { hostArch } from '../../core/arch.js';
import { existsSync, readFileSync } from 'node:fs';
import type { AttachPath, Loaded } from '../../core/paths.js';
import { RbtraceError, UsageError } from '../../core/errors.js';
import { kernelBtfHas } from '../../core/kernel-targets.js';

/** Where a kernel with kprobes lists their perf event type. */
const KPROBE_PMU = '/sys/bus/event_source/devices/kprobe';

/** Kernel function names: what the kernel's symbols can be (module suffixes and .cold parts are not). */
const KFUNC_NAME = /^[A-Za-z_][A-Za-z0-9_.]*$/;

export function kernelPaths(func: string): AttachPath[] {
  return [
    {
      name: 'fentry',
      programs: ['strlat_fentry', 'strlat_fexit'],
      attachTargets: { strlat_fentry: func, strlat_fexit: func },
      note: `fentry/fexit on ${func}: BPF trampolines, the cheapest kernel hook`,
    },
    {
      name: 'kprobe',
      programs: ['strlat_kprobe', 'strlat_kretprobe'],
      attach: (obj) => [obj.program('strlat_kprobe').attachKprobe(func), obj.program('strlat_kretprobe').attachKprobe(func, true)],
      note: `kprobe + kretprobe on ${func} (no fentry here)`,
    },
  ];
}

/** Text functions of /proc/kallsyms named `func` (modules' too). */
function inKallsyms(func: string): boolean | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/kallsyms', 'utf8');
  } catch {
    return undefined; // no kallsyms: let the attach decide
  }
  const re = new RegExp(`^\\S+ [TtWw] ${func.replace(/\./g, '\\.')}(\\s|$)`, 'm');
  return re.test(text);
}

/** Refuse a name that is no kernel function before loading anything. */
export function checkKernelFunction(func: string): void {
  if (!KFUNC_NAME.test(func)) {
    throw new UsageError(`--kfunc: '${func}' is not a kernel function name`, 'give one name as /proc/kallsyms lists it, e.g. --kfunc vfs_read');
  }
  if (inKallsyms(func) === false && !kernelBtfHas(func, 'func')) {
    throw new RbtraceError(`no kernel function '${func}' (not in /proc/kallsyms nor the kernel's BTF)`,
      { hint: `list them with grep -w T /proc/kallsyms; syscalls are ${hostArch().syscallPrefix}NAME on ${hostArch().machine}` });
  }
}

/**
 * Load through the kernel paths, and when none works say so in one line,
 * naming both hooks and why each failed (as on a kernel without kprobes
 * whose BPF trampolines are refused).
 */
export function loadKernelPaths(func: string, load: (paths: AttachPath[]) => Loaded): Loaded {
  try {
    return load(kernelPaths(func));
  } catch (err) {
    if (!(err instanceof RbtraceError) || !/^no attach path works/.test(err.message)) throw err;
    const why = err.message.replace(/^no attach path works on this kernel: /, '')
      .replace(/kprobe: .*ENOENT[^;]*/, (m) => (existsSync(KPROBE_PMU) ? m : 'kprobe: this kernel has no kprobes (CONFIG_KPROBES is off)'));
    // The one line says it all; -v has libbpf's log.
    throw new RbtraceError(`cannot time kernel function ${func}: this kernel offers neither fentry nor kprobes for it (${why})`,
      { hint: 'a kernel with CONFIG_KPROBES or BPF trampolines (fentry, 5.5+) can; rbtrace doctor lists what this one offers' });
  }
}
