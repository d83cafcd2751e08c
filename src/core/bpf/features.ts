// What this kernel lets rbtrace do, found by trying: each attach kind loads
// and attaches a trivial program from probe.bpf.o, then detaches at once.
import { existsSync, readFileSync } from 'node:fs';
import { libbpf } from '../ffi/libbpf.js';
import { BpfObject, type BpfProgram, type BpfLink } from './object.js';
import { ensureTracefs, hasBtf, privileges, tracefsMounted, tracefsState } from '../linux/system.js';
import { findLibrary } from '../linux/process.js';
import { errnoText } from '../errors.js';
import { SKELETON, type ProgramName } from '../../generated/probe.js';

export type AttachKind = 'fentry' | 'kprobe' | 'tracepoint' | 'raw_tp' | 'tp_btf' | 'uprobe' | 'usdt' | 'iter';

export interface Feature {
  name: string;
  available: boolean;
  detail: string;
}

function tryProgram(program: ProgramName, setup: (p: BpfProgram) => void, attach: (p: BpfProgram) => BpfLink): Feature {
  let obj: BpfObject<typeof SKELETON> | undefined;
  try {
    obj = BpfObject.open(SKELETON);
    obj.selectPrograms([program]);
    const prog = obj.program(program);
    setup(prog);
    obj.load();
    attach(prog).destroy();
    return { name: program.replace(/^probe_/, ''), available: true, detail: 'loads and attaches' };
  } catch (err) {
    return { name: program.replace(/^probe_/, ''), available: false, detail: (err as Error).message.replace(/^cannot (load|attach) [^:]*: /, '') };
  } finally {
    obj?.close();
  }
}

export function probeAttachKind(kind: AttachKind): Feature {
  // A function every kernel has, and in BTF (not every syscall wrapper is).
  const target = 'do_nanosleep';
  switch (kind) {
    case 'fentry':
      return tryProgram('probe_fentry', (p) => p.setAttachTarget(target), (p) => p.attach());
    case 'kprobe': {
      const f = tryProgram('probe_kprobe', () => {}, (p) => p.attachKprobe(target));
      if (!f.available && !existsSync('/sys/bus/event_source/devices/kprobe')) f.detail = `this kernel has no kprobes (CONFIG_KPROBES is off): ${f.detail}`;
      return f;
    }
    case 'tracepoint': {
      const f = tryProgram('probe_tracepoint', () => {}, (p) => {
        ensureTracefs();
        return p.attach();
      });
      if (f.available) f.detail += tracefsNote();
      return f;
    }
    case 'raw_tp':
      return tryProgram('probe_raw_tp', () => {}, (p) => p.attach());
    case 'tp_btf':
      return tryProgram('probe_tp_btf', () => {}, (p) => p.attach());
    case 'iter':
      return tryProgram('probe_iter', () => {}, (p) => p.attach());
    case 'uprobe': {
      const libc = safe(() => findLibrary('c'));
      if (!libc) return { name: 'uprobe', available: false, detail: 'no libc found to probe' };
      const f = tryProgram('probe_uprobe', () => {}, (p) => p.attachUprobe({ binary: libc, func: 'getppid', pid: process.pid }));
      // Measured: perf_event_open answers EACCES for uprobes without CAP_SYS_ADMIN.
      if (!f.available && !privileges().uprobes) f.detail = `needs CAP_SYS_ADMIN (${f.detail})`;
      return f;
    }
    case 'usdt': {
      const up = probeAttachKind('uprobe');
      const refctr = existsSync('/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset');
      return {
        name: 'usdt',
        available: up.available,
        detail: up.available
          ? `through uprobes (libbpf)${refctr ? '; semaphores by the kernel\'s ref counter' : '; no ref_ctr_offset: probes behind semaphores stay off'}`
          : `needs uprobes: ${up.detail}`,
      };
    }
  }
}

let tracefsWasMounted: boolean | undefined;
function tracefsNote(): string {
  return tracefsWasMounted === false ? ' (tracefs was not mounted: rbtrace mounted it)' : '';
}

export function probeTracefs(): Feature {
  tracefsWasMounted ??= tracefsMounted();
  const state = tracefsState();
  const detail = state === 'readable' ? (tracefsWasMounted ? 'mounted' : 'mounted by rbtrace')
    : state === 'root only' ? 'mounted, readable by root only: tracepoint paths need root'
      : 'not mounted (rbtrace mounts it, as root, when a tracepoint path is used)';
  return { name: 'tracefs', available: state === 'readable', detail };
}

export function probeRingBuffer(): Feature {
  // libbpf says 0 ("not supported") when the map cannot be created for any
  // reason, EPERM included: without CAP_BPF that says nothing about the kernel.
  if (!privileges().sufficient) return { name: 'ringbuf', available: false, detail: 'not probed: creating a BPF map needs root, or CAP_BPF' };
  const r = libbpf.probeMapType(27 /* BPF_MAP_TYPE_RINGBUF */, null);
  if (r < 0) return { name: 'ringbuf', available: false, detail: `not probed: ${errnoText(r)}` };
  return { name: 'ringbuf', available: r === 1, detail: r === 1 ? 'BPF_MAP_TYPE_RINGBUF (5.8+)' : 'no ring buffer: kernel older than 5.8' };
}

let taskStorage: boolean | undefined;
/** BPF_MAP_TYPE_TASK_STORAGE (and bpf_get_current_task_btf()): Linux 5.11+. */
export function hasTaskStorage(): boolean {
  taskStorage ??= libbpf.probeMapType(29 /* BPF_MAP_TYPE_TASK_STORAGE */, null) === 1;
  return taskStorage;
}

export function probeBpffs(): Feature {
  const mounts = safe(() => readFileSync('/proc/mounts', 'utf8')) ?? '';
  const ok = /\sbpf\s/.test(mounts);
  return { name: 'bpffs', available: ok, detail: ok ? 'mounted' : 'not mounted (rbtrace does not pin anything, so it does not need it)' };
}

export function probeBtf(): Feature {
  return { name: 'btf', available: hasBtf(), detail: hasBtf() ? '/sys/kernel/btf/vmlinux' : 'missing: CO-RE objects cannot load' };
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

export const ATTACH_KINDS: AttachKind[] = ['fentry', 'kprobe', 'tracepoint', 'raw_tp', 'tp_btf', 'uprobe', 'usdt', 'iter'];
