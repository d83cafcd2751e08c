// A CO-RE BPF object: open, configure (.rodata filters, which programs load),
// load (a verifier failure keeps the log), attach, close.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { packageRoot } from '../package.js';
import { libbpf, lastErrno, memoryView, objectOpenOpts, programRecursionMisses, setLibbpfPrint, uprobeOpts, usdtOpts, withIterMapOpts, LIBBPF_DEBUG, type Pointer } from '../ffi/libbpf.js';
import { minimizedBtf } from './btf.js';
import { bpfArchDir } from './arch.js';
import { RbtraceError, errnoText } from '../errors.js';
import { misleadingMemlockHint } from './refusals.js';
import { writeField } from './layout.js';
import { BpfMap, type TypedMap } from './maps.js';
import type { AnySkeleton, MapKeyOf, MapName, MapValueOf, ProgramName, RodataOf, RodataVar, Skeleton, TypedMapName } from '../skeleton/types.js';

/** build/bpf/<arch> of this package: this architecture's objects (RBTRACE_BPF_DIR overrides it). */
export function bpfObjectDir(): string {
  if (process.env.RBTRACE_BPF_DIR) return resolve(process.env.RBTRACE_BPF_DIR);
  const arch = bpfArchDir();
  if ('error' in arch) throw new RbtraceError(arch.error, { hint: 'run rbtrace on an x86-64 or arm64 machine' });
  return join(packageRoot(), 'build/bpf', arch.dir);
}

// ---- libbpf's log: kept in memory, shown when something fails ----------
let logLines: string[] = [];
let logInstalled = false;
let echoLog = false;

function installLog(): void {
  if (logInstalled) return;
  logInstalled = true;
  setLibbpfPrint((level, text) => {
    if (level === LIBBPF_DEBUG) return;
    // libbpf 1.x raises RLIMIT_MEMLOCK itself where the kernel still counts
    // BPF memory against it (before 5.11), so its "try raising 'ulimit -l'"
    // after an EPERM only ever points away from the real cause.
    if (misleadingMemlockHint(text)) return;
    for (const line of text.replace(/\n$/, '').split('\n')) logLines.push(line);
    if (logLines.length > 20000) logLines = logLines.slice(-10000);
    if (echoLog) process.stderr.write(`libbpf: ${text.endsWith('\n') ? text : text + '\n'}`);
  });
}

/** Print libbpf's messages as they come (--verbose). */
export function echoLibbpfLog(on: boolean): void {
  echoLog = on;
}

export function takeLibbpfLog(): string[] {
  const lines = logLines;
  logLines = [];
  return lines;
}

// ---- links ----------------------------------------------------------------
export class BpfLink {
  private ptr: Pointer | null;
  constructor(ptr: Pointer, readonly description: string) {
    this.ptr = ptr;
  }
  get fd(): number {
    if (!this.ptr) throw new Error(`link ${this.description} is destroyed`);
    return libbpf.linkFd(this.ptr);
  }
  destroy(): void {
    if (this.ptr) libbpf.linkDestroy(this.ptr);
    this.ptr = null;
  }
}

/**
 * A binary for uprobes and USDT: a path, or a file opened by procfiles.ts
 * (its `path` is handed to libbpf, its name shown in errors).
 */
export type BinaryRef = string | { readonly path: string; toString(): string };

const binaryPath = (b: BinaryRef): string => (typeof b === 'string' ? b : b.path);

export interface UprobeSpec {
  /** The binary or library (see findLibrary in process.ts). */
  binary: BinaryRef;
  /** Symbol; libbpf resolves it in .dynsym then .symtab. */
  func?: string;
  /** Or a raw offset in the file. */
  offset?: number;
  retprobe?: boolean;
  /** -1 (or absent): every process that maps the binary. */
  pid?: number;
  /** BPF cookie (bpf_get_attach_cookie(), 5.15+): which of several probes fired. */
  cookie?: bigint;
}

export interface UsdtSpec {
  binary: BinaryRef;
  provider: string;
  name: string;
  pid?: number;
  cookie?: bigint;
}

// ---- programs ---------------------------------------------------------------
export class BpfProgram {
  constructor(private readonly obj: BpfObject, readonly ptr: Pointer, readonly name: string) {}

  get section(): string {
    return libbpf.programSection(this.ptr);
  }
  get autoload(): boolean {
    return libbpf.programAutoload(this.ptr);
  }
  set autoload(on: boolean) {
    check(libbpf.programSetAutoload(this.ptr, on), `cannot change autoload of ${this.name}`);
  }
  /** fentry/fexit: the kernel function, chosen at run time (before load). */
  setAttachTarget(func: string): void {
    check(libbpf.programSetAttachTarget(this.ptr, 0, func), `cannot set attach target ${func} for ${this.name}`);
  }
  get fd(): number {
    return libbpf.programFd(this.ptr);
  }
  /** Runs the kernel skipped (see programRecursionMisses); undefined if not loaded or not counted. */
  get recursionMisses(): number | undefined {
    const fd = this.fd;
    return fd >= 0 ? programRecursionMisses(fd) : undefined;
  }

  /** Attach as the SEC() name says (tracepoint/, raw_tp/, tp_btf/, fentry/, ksyscall/, iter/, ...). */
  attach(): BpfLink {
    return this.link(libbpf.attach(this.ptr), `${this.name} (${this.section})`);
  }
  /**
   * An iterator over one map's elements (SEC("iter/bpf_map_elem"), 5.9+):
   * each read of an iterator made from the link (createIterator) runs the
   * program on every element of `map`. Such a program cannot be attached as
   * its SEC() says (the kernel wants the map), so its attach path lists it
   * in `loadOnly`.
   */
  attachIterMap(map: BpfMap): BpfLink {
    return this.link(withIterMapOpts(map.fd, (opts) => libbpf.attachIter(this.ptr, opts)), `${this.name} (${this.section}, map ${map.name})`);
  }
  attachTracepoint(category: string, name: string): BpfLink {
    return this.link(libbpf.attachTracepoint(this.ptr, category, name), `tracepoint ${category}:${name}`);
  }
  attachRawTracepoint(name: string): BpfLink {
    return this.link(libbpf.attachRawTracepoint(this.ptr, name), `raw_tp ${name}`);
  }
  attachKprobe(func: string, retprobe = false): BpfLink {
    return this.link(libbpf.attachKprobe(this.ptr, retprobe, func), `${retprobe ? 'kretprobe' : 'kprobe'} ${func}`);
  }
  attachUprobe(spec: UprobeSpec): BpfLink {
    const opts = uprobeOpts({ funcName: spec.func, retprobe: spec.retprobe, cookie: spec.cookie });
    const what = `${spec.retprobe ? 'uretprobe' : 'uprobe'} ${spec.binary}:${spec.func ?? '0x' + (spec.offset ?? 0).toString(16)}`;
    return this.link(libbpf.attachUprobeOpts(this.ptr, spec.pid ?? -1, binaryPath(spec.binary), spec.offset ?? 0, opts), what);
  }
  attachUsdt(spec: UsdtSpec): BpfLink {
    return this.link(libbpf.attachUsdt(this.ptr, spec.pid ?? -1, binaryPath(spec.binary), spec.provider, spec.name, usdtOpts(spec.cookie ?? 0n)),
      `usdt ${spec.binary}:${spec.provider}:${spec.name}`);
  }

  private link(ptr: Pointer | null, what: string): BpfLink {
    if (!ptr) {
      const errno = lastErrno();
      const log = takeLibbpfLog();
      throw new RbtraceError(`cannot attach ${what}: ${errnoText(errno)}`, { details: log.join('\n') || undefined, errno: Math.abs(errno) });
    }
    return this.obj.own(new BpfLink(ptr, what));
  }
}

// ---- objects -----------------------------------------------------------------
export interface OpenOptions {
  /** CO-RE against the kernel's own BTF, not the build's minimized one. */
  fullBtf?: boolean;
  /** The object file, when not where the skeleton's name says (a user's tool next to its .ts). */
  path?: string;
}

/**
 * An open BPF object. S is its generated skeleton (src/generated/NAME.ts,
 * SKELETON): program, map and .rodata names are checked against it at
 * compile time. An object opened by path alone (S = AnySkeleton) takes any name.
 */
export class BpfObject<S extends AnySkeleton = AnySkeleton> {
  private ptr: Pointer | null;
  private readonly links: BpfLink[] = [];
  private loaded = false;

  private constructor(ptr: Pointer, readonly path: string, readonly btfCustomPath?: string,
    readonly skeleton?: AnySkeleton) {
    this.ptr = ptr;
  }

  /**
   * Open build/bpf/<arch>/<name>.bpf.o (or a path to any .bpf.o), or the
   * object of a generated skeleton (typed). CO-RE relocates against the
   * build's minimized BTF when it fits the running kernel (src/core/bpf/btf.ts),
   * unless `fullBtf` is set.
   */
  static open<P extends string, M extends string, R extends object, T extends object>(skeleton: Skeleton<P, M, R, T>, opts?: OpenOptions): BpfObject<Skeleton<P, M, R, T>>;
  static open(nameOrPath: string, opts?: OpenOptions): BpfObject;
  static open(what: string | AnySkeleton, opts: OpenOptions = {}): BpfObject<any> {
    installLog();
    const skeleton = typeof what === 'string' ? undefined : what;
    const path = BpfObject.resolvePath(opts.path ?? what);
    if (!existsSync(path)) {
      throw new RbtraceError(`BPF object ${path} is missing`, { hint: 'build it: npm run build' });
    }
    takeLibbpfLog();
    const btfCustomPath = opts.fullBtf || dirname(path) !== resolve(bpfObjectDir()) ? undefined : minimizedBtf(bpfObjectDir());
    const ptr = libbpf.openFile(path, btfCustomPath ? objectOpenOpts({ btfCustomPath }) : null);
    if (!ptr) {
      const errno = lastErrno();
      throw new RbtraceError(`cannot open BPF object ${path}: ${errnoText(errno)}`, { details: takeLibbpfLog().join('\n') });
    }
    return new BpfObject(ptr, path, btfCustomPath, skeleton);
  }

  /** The file open() reads for a skeleton or a name: build/bpf/<arch>/<name>.bpf.o, or the path given. */
  static resolvePath(what: string | AnySkeleton): string {
    const nameOrPath = typeof what === 'string' ? what : what.object;
    return nameOrPath.includes('/') ? nameOrPath : join(bpfObjectDir(), `${nameOrPath.replace(/\.bpf\.o$/, '')}.bpf.o`);
  }

  private get handle(): Pointer {
    if (!this.ptr) throw new Error(`BPF object ${this.path} is closed`);
    return this.ptr;
  }

  programs(): BpfProgram[] {
    const out: BpfProgram[] = [];
    for (let p = libbpf.nextProgram(this.handle, null); p; p = libbpf.nextProgram(this.handle, p)) {
      out.push(new BpfProgram(this, p, libbpf.programName(p)));
    }
    return out;
  }

  program(name: ProgramName<S>): BpfProgram {
    const p = libbpf.findProgram(this.handle, name);
    if (!p) throw new Error(`BPF object ${this.path} has no program ${name}`);
    return new BpfProgram(this, p, name);
  }

  hasProgram(name: ProgramName<S>): boolean {
    return libbpf.findProgram(this.handle, name) !== null;
  }

  map(name: MapName<S>): BpfMap {
    const m = libbpf.findMap(this.handle, name);
    if (!m) throw new Error(`BPF object ${this.path} has no map ${name}`);
    return new BpfMap(m, name);
  }

  /**
   * A map read and written decoded, with the key and value types the
   * skeleton took from the C (per-CPU values summed by TypedMap).
   */
  typedMap<N extends TypedMapName<S>>(name: N): TypedMap<MapKeyOf<S, N>, MapValueOf<S, N>> {
    const spec = this.skeleton?.maps[name];
    if (!spec?.key || !spec.value) throw new Error(`BPF object ${this.path}: map ${name} has no key and value types in its skeleton`);
    return this.map(name as unknown as MapName<S>).typed(spec.key, spec.value) as TypedMap<MapKeyOf<S, N>, MapValueOf<S, N>>;
  }

  /** Load only these programs (every other one is left out). */
  selectPrograms(names: Iterable<ProgramName<S>>): void {
    const wanted = new Set<string>(names);
    for (const p of this.programs()) p.autoload = wanted.has(p.name);
    for (const n of wanted) if (!libbpf.findProgram(this.handle, n)) throw new Error(`BPF object ${this.path} has no program ${n}`);
  }

  /**
   * Set `const volatile` globals before load, by name, typed by the
   * skeleton the object was opened with. (The older form, with the RODATA
   * table generated from the object's BTF first, still works.)
   */
  setRodata(values: Partial<RodataOf<S>>): void;
  setRodata(spec: Record<string, RodataVar>, values: Record<string, unknown>): void;
  setRodata(specOrValues: object, maybeValues?: Record<string, unknown>): void {
    const spec = (maybeValues ? specOrValues : this.skeleton?.rodata) as Record<string, RodataVar> | undefined;
    const values = (maybeValues ?? specOrValues) as Record<string, unknown>;
    if (!spec) throw new Error(`BPF object ${this.path}: .rodata values given without its skeleton`);
    if (this.loaded) throw new Error('.rodata is frozen once the object is loaded');
    const m = libbpf.findMap(this.handle, '.rodata');
    if (!m) throw new Error(`BPF object ${this.path} has no .rodata`);
    const size: [number | null] = [null];
    const ptr = libbpf.mapInitialValue(m, size);
    if (!ptr) throw new Error('cannot map .rodata');
    const dv = new DataView(memoryView(ptr, Number(size[0])));
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) continue;
      const f = spec[name];
      if (!f) throw new Error(`BPF object ${this.path} has no .rodata variable ${name}`);
      writeField(dv, f.offset, f.kind, f.size, value);
    }
  }

  /** Load into the kernel. On failure the error carries libbpf's log (with the verifier's). */
  load(): void {
    takeLibbpfLog();
    const err = libbpf.load(this.handle);
    const log = takeLibbpfLog();
    if (err < 0) {
      throw new RbtraceError(`cannot load ${this.path.replace(/.*\//, '')}: ${errnoText(err)}`,
        { details: log.join('\n') || undefined, errno: Math.abs(err) });
    }
    this.loaded = true;
  }

  /**
   * Runs the kernel skipped, by loaded program (only those with some): their
   * CPU was already in BPF. Empty once closed, or where the kernel does not count.
   */
  skippedRuns(): Record<string, number> {
    const out: Record<string, number> = {};
    if (!this.ptr) return out;
    for (const p of this.programs()) {
      const n = p.recursionMisses;
      if (n) out[p.name] = n;
    }
    return out;
  }

  own(link: BpfLink): BpfLink {
    this.links.push(link);
    return link;
  }

  /** Detach everything, then free the object (and with it every program and map fd). */
  close(): void {
    if (!this.ptr) return;
    for (const l of this.links.splice(0).reverse()) l.destroy();
    libbpf.close(this.ptr);
    this.ptr = null;
  }
}

function check(ret: number, what: string): void {
  if (ret < 0) throw new RbtraceError(`${what}: ${errnoText(ret)}`);
}
