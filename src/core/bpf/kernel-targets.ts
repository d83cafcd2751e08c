// Does the running kernel have what a BPF program hooks? Answered from the
// program's SEC() name without loading it: the kernel's BTF for tp_btf,
// fentry/fexit and kprobes, tracefs for classic tracepoints. Used for
// AttachPath.optional programs (paths.ts): a program whose hook a kernel
// lacks (e.g. sock:sk_data_ready before 6.2) is left out instead of failing
// the whole path.
import { libbpf, readU32s, type Pointer } from '../ffi/libbpf.js';
import { tracefsMounted, tracepointExists } from '../linux/system.js';

const BTF_KIND_TYPEDEF = 8;
const BTF_KIND_FUNC = 12;

let vmlinux: Pointer | null | undefined;

function kernelBtf(): Pointer | null {
  if (vmlinux === undefined) vmlinux = libbpf.btfLoadVmlinux();
  return vmlinux;
}

/**
 * Let go of the kernel's parsed BTF (tens of MB of C heap that a long-running
 * tool would otherwise keep for nothing); the next question parses it again.
 */
export function releaseKernelBtf(): void {
  if (vmlinux) libbpf.btfFree(vmlinux);
  vmlinux = undefined;
}

/** A named type of this kind in the kernel's BTF (true when BTF cannot be read: let the load decide). */
export function kernelBtfHas(name: string, kind: 'func' | 'typedef'): boolean {
  const btf = kernelBtf();
  if (!btf) return true;
  return libbpf.btfFindByNameKind(btf, name, kind === 'func' ? BTF_KIND_FUNC : BTF_KIND_TYPEDEF) > 0;
}

const BTF_KIND_PTR = 2;
const BTF_KIND_FUNC_PROTO = 13;

/**
 * How many arguments a tracepoint passes to BPF on this kernel, from its
 * btf_trace_NAME typedef (a pointer to a function whose first parameter is
 * the tracepoint's private data); undefined when BTF cannot tell. Kernels
 * change a tracepoint's arguments, and stable series backport the change
 * (Debian's 5.10 has 6.x's one-argument block_rq_issue): ask, never guess
 * from the version.
 */
export function tracepointArgCount(name: string): number | undefined {
  const btf = kernelBtf();
  if (!btf) return undefined;
  const id = libbpf.btfFindByNameKind(btf, `btf_trace_${name}`, BTF_KIND_TYPEDEF);
  if (id <= 0) return undefined;
  let t = libbpf.btfTypeById(btf, id);
  for (const want of [BTF_KIND_PTR, BTF_KIND_FUNC_PROTO]) {
    if (!t) return undefined;
    const next = libbpf.btfTypeById(btf, readU32s(t, 3)[2]);
    if (!next) return undefined;
    const [, info] = readU32s(next, 2);
    if (((info >>> 24) & 0x1f) !== want) return undefined;
    if (want === BTF_KIND_FUNC_PROTO) return (info & 0xffff) - 1;
    t = next;
  }
  return undefined;
}

/**
 * Whether the hook named by a SEC() exists here, with the reason when it does
 * not. Sections it does not know (uprobe/, usdt/, ...) count as present.
 */
export function hookPresent(section: string): { present: boolean; missing?: string } {
  const [kind, ...rest] = section.split('/');
  switch (kind) {
    case 'tp_btf': {
      const name = rest.join('/');
      return kernelBtfHas(`btf_trace_${name}`, 'typedef') ? { present: true } : { present: false, missing: `no ${name} tracepoint in the kernel's BTF` };
    }
    case 'tracepoint':
    case 'tp': {
      const [category, name] = rest;
      if (!category || !name) return { present: true };
      // tracefs when mounted; else BTF's btf_trace_<name> (every tracepoint has one).
      const here = tracefsMounted() ? tracepointExists(category, name) : kernelBtfHas(`btf_trace_${name}`, 'typedef');
      return here ? { present: true } : { present: false, missing: `no ${category}:${name} tracepoint` };
    }
    case 'fentry':
    case 'fexit':
    case 'kprobe':
    case 'kretprobe': {
      const func = rest.join('/');
      if (!func) return { present: true };
      return kernelBtfHas(func, 'func') ? { present: true } : { present: false, missing: `no kernel function ${func} in BTF` };
    }
    case 'iter': {
      // libbpf finds an iterator target by its bpf_iter_<target> function (iter/task_file: 5.8+).
      const target = rest.join('/');
      if (!target) return { present: true };
      return kernelBtfHas(`bpf_iter_${target}`, 'func') ? { present: true } : { present: false, missing: `no ${target} iterator in this kernel` };
    }
    default:
      return { present: true };
  }
}
