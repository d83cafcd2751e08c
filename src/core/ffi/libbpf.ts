// The one and only FFI module: binds the system's libbpf.so.1 through koffi.
//
// Nothing outside src/core/ffi may import koffi. Everything above this file
// uses the typed wrappers in src/core (object.ts, maps.ts, ringbuf.ts, ...).
//
// libbpf 1.x conventions (what the wrappers rely on):
//  - pointer-returning calls return NULL and set errno: read `lastErrno()`
//    immediately after the call, before any other FFI call can clobber it;
//  - int-returning calls return -errno.
// The bindings target libbpf 1.1 (Debian 12); nothing newer is declared.
import koffi from 'koffi';

export type Pointer = object; // an opaque koffi External wrapping a C pointer

let lib: koffi.IKoffiLib | undefined;
let libc: koffi.IKoffiLib | undefined;

function load(): koffi.IKoffiLib {
  if (lib) return lib;
  try {
    lib = koffi.load(process.env.RBTRACE_LIBBPF ?? 'libbpf.so.1');
  } catch (err) {
    const e = new Error(`cannot load libbpf.so.1 (install it: apt-get install libbpf1): ${(err as Error).message}`);
    (e as any).code = 'ENOLIBBPF';
    throw e;
  }
  return lib;
}

koffi.opaque('bpf_object');
koffi.opaque('bpf_program');
koffi.opaque('bpf_map');
koffi.opaque('bpf_link');
koffi.opaque('ring_buffer');
koffi.opaque('btf');

// libbpf 1.1's struct bpf_object_open_opts (size 80 on LP64).
const ObjectOpenOpts = koffi.struct('bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
  relaxed_maps: 'bool',
  pin_root_path: 'const char *',
  removed_attach_prog_fd: 'uint32_t', // `__u32 :32` in the header: keeps kconfig at offset 40
  kconfig: 'const char *',
  btf_custom_path: 'const char *',
  kernel_log_buf: 'void *',
  kernel_log_size: 'size_t',
  kernel_log_level: 'uint32_t',
});

// libbpf 1.1's struct bpf_uprobe_opts (size 40 on LP64).
const UprobeOpts = koffi.struct('bpf_uprobe_opts', {
  sz: 'size_t',
  ref_ctr_offset: 'size_t',
  bpf_cookie: 'uint64_t',
  retprobe: 'bool',
  func_name: 'const char *',
});
// libbpf 1.1's struct bpf_usdt_opts.
const UsdtOpts = koffi.struct('bpf_usdt_opts', {
  sz: 'size_t',
  usdt_cookie: 'uint64_t',
});

// libbpf 1.1's struct bpf_iter_attach_opts; link_info points at a union
// bpf_iter_link_info, of which only the map iterator's { __u32 map_fd } is used.
const IterAttachOpts = koffi.struct('bpf_iter_attach_opts', {
  sz: 'size_t',
  link_info: 'void *',
  link_info_len: 'uint32_t',
});

const SampleCallback = koffi.proto('int rbtrace_ring_buffer_sample_fn(void *ctx, void *data, size_t size)');
const PrintCallback = koffi.proto('int rbtrace_libbpf_print_fn(int level, const char *fmt, void *args)');

type Fn = (...args: any[]) => any;

/** Lazily bound function table: a tool that never touches ring buffers never binds them. */
function bind<T extends Fn>(proto: string): T {
  let f: Fn | undefined;
  return ((...args: any[]) => {
    f ??= load().func(proto);
    return f(...args);
  }) as T;
}

export const libbpf = {
  majorVersion: bind<() => number>('uint32_t libbpf_major_version(void)'),
  versionString: bind<() => string>('const char *libbpf_version_string(void)'),
  numPossibleCpus: bind<() => number>('int libbpf_num_possible_cpus(void)'),

  // objects
  openFile: bind<(path: string, opts: object | null) => Pointer | null>(
    'bpf_object *bpf_object__open_file(const char *path, const bpf_object_open_opts *opts)'),
  load: bind<(obj: Pointer) => number>('int bpf_object__load(bpf_object *obj)'),
  close: bind<(obj: Pointer) => void>('void bpf_object__close(bpf_object *obj)'),
  findProgram: bind<(obj: Pointer, name: string) => Pointer | null>(
    'bpf_program *bpf_object__find_program_by_name(const bpf_object *obj, const char *name)'),
  nextProgram: bind<(obj: Pointer, prev: Pointer | null) => Pointer | null>(
    'bpf_program *bpf_object__next_program(const bpf_object *obj, bpf_program *prog)'),
  findMap: bind<(obj: Pointer, name: string) => Pointer | null>(
    'bpf_map *bpf_object__find_map_by_name(const bpf_object *obj, const char *name)'),
  nextMap: bind<(obj: Pointer, prev: Pointer | null) => Pointer | null>(
    'bpf_map *bpf_object__next_map(const bpf_object *obj, const bpf_map *map)'),

  // programs
  programName: bind<(prog: Pointer) => string>('const char *bpf_program__name(const bpf_program *prog)'),
  programSetAutoload: bind<(prog: Pointer, on: boolean) => number>(
    'int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
  programAutoload: bind<(prog: Pointer) => boolean>('bool bpf_program__autoload(const bpf_program *prog)'),
  programSetAttachTarget: bind<(prog: Pointer, fd: number, name: string | null) => number>(
    'int bpf_program__set_attach_target(bpf_program *prog, int attach_prog_fd, const char *attach_func_name)'),
  programFd: bind<(prog: Pointer) => number>('int bpf_program__fd(const bpf_program *prog)'),
  programSection: bind<(prog: Pointer) => string>('const char *bpf_program__section_name(const bpf_program *prog)'),

  // attach: every call returns a bpf_link* or NULL + errno
  attach: bind<(prog: Pointer) => Pointer | null>('bpf_link *bpf_program__attach(const bpf_program *prog)'),
  attachTracepoint: bind<(prog: Pointer, category: string, name: string) => Pointer | null>(
    'bpf_link *bpf_program__attach_tracepoint(const bpf_program *prog, const char *tp_category, const char *tp_name)'),
  attachRawTracepoint: bind<(prog: Pointer, name: string) => Pointer | null>(
    'bpf_link *bpf_program__attach_raw_tracepoint(const bpf_program *prog, const char *tp_name)'),
  attachTrace: bind<(prog: Pointer) => Pointer | null>('bpf_link *bpf_program__attach_trace(const bpf_program *prog)'),
  attachKprobe: bind<(prog: Pointer, retprobe: boolean, func: string) => Pointer | null>(
    'bpf_link *bpf_program__attach_kprobe(const bpf_program *prog, bool retprobe, const char *func_name)'),
  attachUprobeOpts: bind<(prog: Pointer, pid: number, binary: string, offset: number, opts: object) => Pointer | null>(
    'bpf_link *bpf_program__attach_uprobe_opts(const bpf_program *prog, int pid, const char *binary_path, size_t func_offset, const bpf_uprobe_opts *opts)'),
  attachUsdt: bind<(prog: Pointer, pid: number, binary: string, provider: string, name: string, opts: object | null) => Pointer | null>(
    'bpf_link *bpf_program__attach_usdt(const bpf_program *prog, int pid, const char *binary_path, const char *usdt_provider, const char *usdt_name, const bpf_usdt_opts *opts)'),
  attachIter: bind<(prog: Pointer, opts: object | null) => Pointer | null>(
    'bpf_link *bpf_program__attach_iter(const bpf_program *prog, const bpf_iter_attach_opts *opts)'),
  attachPerfEvent: bind<(prog: Pointer, pfd: number) => Pointer | null>(
    'bpf_link *bpf_program__attach_perf_event(const bpf_program *prog, int pfd)'),
  linkFd: bind<(link: Pointer) => number>('int bpf_link__fd(const bpf_link *link)'),
  linkDestroy: bind<(link: Pointer) => number>('int bpf_link__destroy(bpf_link *link)'),
  iterCreate: bind<(linkFd: number) => number>('int bpf_iter_create(int link_fd)'),
  objGetInfoByFd: bind<(fd: number, info: Buffer, len: number[]) => number>(
    'int bpf_obj_get_info_by_fd(int bpf_fd, void *info, _Inout_ uint32_t *info_len)'),

  // maps
  mapFd: bind<(map: Pointer) => number>('int bpf_map__fd(const bpf_map *map)'),
  mapName: bind<(map: Pointer) => string>('const char *bpf_map__name(const bpf_map *map)'),
  mapType: bind<(map: Pointer) => number>('int bpf_map__type(const bpf_map *map)'),
  mapKeySize: bind<(map: Pointer) => number>('uint32_t bpf_map__key_size(const bpf_map *map)'),
  mapValueSize: bind<(map: Pointer) => number>('uint32_t bpf_map__value_size(const bpf_map *map)'),
  mapMaxEntries: bind<(map: Pointer) => number>('uint32_t bpf_map__max_entries(const bpf_map *map)'),
  mapSetMaxEntries: bind<(map: Pointer, n: number) => number>('int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)'),
  mapSetAutocreate: bind<(map: Pointer, autocreate: boolean) => number>('int bpf_map__set_autocreate(bpf_map *map, bool autocreate)'),
  mapInitialValue: bind<(map: Pointer, size: [number | null]) => Pointer | null>(
    'void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *psize)'),
  mapLookupElem: bind<(fd: number, key: Uint8Array, value: Uint8Array) => number>(
    'int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
  mapUpdateElem: bind<(fd: number, key: Uint8Array, value: Uint8Array, flags: number) => number>(
    'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
  mapDeleteElem: bind<(fd: number, key: Uint8Array) => number>('int bpf_map_delete_elem(int fd, const void *key)'),
  mapGetNextKey: bind<(fd: number, key: Uint8Array | null, next: Uint8Array) => number>(
    'int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
  mapLookupAndDeleteBatch: bind<(fd: number, inBatch: Uint8Array | null, outBatch: Uint8Array, keys: Uint8Array, values: Uint8Array, count: Uint32Array, opts: null) => number>(
    'int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, uint32_t *count, const void *opts)'),
  mapLookupBatch: bind<(fd: number, inBatch: Uint8Array | null, outBatch: Uint8Array, keys: Uint8Array, values: Uint8Array, count: Uint32Array, opts: null) => number>(
    'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, uint32_t *count, const void *opts)'),

  // ring buffers
  ringBufferNew: bind<(fd: number, cb: object, ctx: null, opts: null) => Pointer | null>(
    'ring_buffer *ring_buffer__new(int map_fd, rbtrace_ring_buffer_sample_fn *sample_cb, void *ctx, const void *opts)'),
  ringBufferConsume: bind<(rb: Pointer) => number>('int ring_buffer__consume(ring_buffer *rb)'),
  ringBufferFree: bind<(rb: Pointer) => void>('void ring_buffer__free(ring_buffer *rb)'),

  // kernel BTF (feature probes: does a kernel function exist?)
  btfLoadVmlinux: bind<() => Pointer | null>('btf *btf__load_vmlinux_btf(void)'),
  btfFindByNameKind: bind<(btf: Pointer, name: string, kind: number) => number>(
    'int btf__find_by_name_kind(const btf *btf, const char *type_name, uint32_t kind)'),
  btfFree: bind<(btf: Pointer) => void>('void btf__free(btf *btf)'),
  btfTypeById: bind<(btf: Pointer, id: number) => Pointer | null>('const void *btf__type_by_id(const btf *btf, uint32_t id)'),

  // feature probes
  probeProgType: bind<(type: number, opts: null) => number>('int libbpf_probe_bpf_prog_type(int prog_type, const void *opts)'),
  probeMapType: bind<(type: number, opts: null) => number>('int libbpf_probe_bpf_map_type(int map_type, const void *opts)'),
  probeHelper: bind<(progType: number, helperId: number, opts: null) => number>('int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)'),
};

/** errno left by the last FFI call. */
/**
 * struct bpf_prog_info (uapi/linux/bpf.h) as far as rbtrace reads it:
 * recursion_misses, the runs the kernel skipped because a BPF program (or a
 * map syscall) already held the CPU. test/unit/prog-info.test.ts checks both
 * figures against the header.
 */
export const BPF_PROG_INFO = { size: 232, recursionMisses: 208 } as const;

/**
 * Runs of a loaded program the kernel skipped, or undefined where it does not
 * say: before 5.12 the field is absent; before 6.7 classic tracepoints and
 * kprobes skip without counting.
 */
export function programRecursionMisses(progFd: number): number | undefined {
  const info = Buffer.alloc(BPF_PROG_INFO.size);
  const len = [info.length];
  if (libbpf.objGetInfoByFd(progFd, info, len) !== 0 || len[0] < BPF_PROG_INFO.recursionMisses + 8) return undefined;
  return Number(info.readBigUInt64LE(BPF_PROG_INFO.recursionMisses));
}

export function lastErrno(): number {
  return koffi.errno();
}

export function uprobeOpts(o: { funcName?: string; retprobe?: boolean; refCtrOffset?: number; cookie?: bigint }): object {
  return {
    sz: koffi.sizeof(UprobeOpts),
    ref_ctr_offset: o.refCtrOffset ?? 0,
    bpf_cookie: o.cookie ?? 0n,
    retprobe: o.retprobe ?? false,
    func_name: o.funcName ?? null,
  };
}

/**
 * Run `attach` with the options of an iterator over one map's elements
 * (iter/bpf_map_elem and the like): link_info is { map_fd }, in C memory
 * that lives for the call (the kernel copies it at link creation).
 */
export function withIterMapOpts<T>(mapFd: number, attach: (opts: object) => T): T {
  const info = koffi.alloc('uint32_t', 1);
  try {
    koffi.encode(info, 'uint32_t', mapFd);
    return attach({ sz: koffi.sizeof(IterAttachOpts), link_info: info, link_info_len: 4 });
  } finally {
    koffi.free(info);
  }
}

export function objectOpenOpts(o: { btfCustomPath?: string }): object {
  return {
    sz: koffi.sizeof(ObjectOpenOpts),
    object_name: null,
    relaxed_maps: false,
    pin_root_path: null,
    removed_attach_prog_fd: 0,
    kconfig: null,
    btf_custom_path: o.btfCustomPath ?? null,
    kernel_log_buf: null,
    kernel_log_size: 0,
    kernel_log_level: 0,
  };
}

export function usdtOpts(cookie: bigint = 0n): object {
  return { sz: koffi.sizeof(UsdtOpts), usdt_cookie: cookie };
}

/** A C callback for ring_buffer__new. Call unregisterCallback when the ring buffer is freed. */
export function registerSampleCallback(fn: (data: ArrayBuffer) => number): object {
  return koffi.register((_ctx: unknown, data: Pointer, size: number) => fn(koffi.view(data, Number(size))),
    koffi.pointer(SampleCallback));
}

export function unregisterCallback(cb: object): void {
  koffi.unregister(cb as koffi.IKoffiRegisteredCallback);
}

/** A writable view of C memory (e.g. a map's initial value); valid while the owner lives. */
export function memoryView(ptr: Pointer, size: number): ArrayBuffer {
  return koffi.view(ptr, size);
}

let vsnprintf: Fn | undefined;
let printCallback: object | undefined;

/**
 * Route libbpf's own log lines (warnings, the verifier log on a failed load)
 * to `sink` instead of stderr. libbpf hands us (fmt, va_list); we format it
 * with libc's vsnprintf, passing the va_list through as an opaque pointer
 * (it is an array type on x86_64 and passed by reference on arm64, so a
 * pointer is right on both).
 */
export function setLibbpfPrint(sink: (level: number, line: string) => void): void {
  libc ??= koffi.load('libc.so.6');
  vsnprintf ??= libc.func('int vsnprintf(_Out_ char *buf, size_t size, const char *fmt, void *args)');
  const buf = Buffer.alloc(16384);
  const fn = (level: number, fmt: string, args: Pointer) => {
    const n = vsnprintf!(buf, buf.length, fmt, args);
    if (n > 0) sink(level, buf.toString('utf8', 0, Math.min(n, buf.length - 1)));
    return 0;
  };
  const cb = koffi.register(fn, koffi.pointer(PrintCallback));
  const setPrint = load().func('void *libbpf_set_print(rbtrace_libbpf_print_fn *fn)');
  setPrint(cb);
  if (printCallback) koffi.unregister(printCallback as koffi.IKoffiRegisteredCallback);
  printCallback = cb;
}

export const LIBBPF_WARN = 0;
export const LIBBPF_INFO = 1;
export const LIBBPF_DEBUG = 2;

/** `n` u32 words at a C pointer (a struct btf_type's name_off, info, size/type). */
export function readU32s(p: Pointer, n: number): number[] {
  return koffi.decode(p, koffi.array('uint32_t', n)) as number[];
}
