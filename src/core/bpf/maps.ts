// BPF maps from user space: raw byte access, and typed access through
// layouts generated from BTF. Per-CPU maps return one value per possible
// CPU; `sum()` folds them.
import { libbpf, type Pointer } from '../ffi/libbpf.js';
import { RbtraceError, errnoText } from '../errors.js';
import { StructLayout, toDataView } from './layout.js';

const PERCPU_TYPES = new Set([5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */, 15 /* PERCPU_CGROUP_STORAGE */]);
const ENOENT = 2;

let cpuCount: number | undefined;
/** Possible CPUs: the number of slots in a per-CPU value. */
export function possibleCpus(): number {
  cpuCount ??= libbpf.numPossibleCpus();
  return cpuCount;
}

export class BpfMap {
  constructor(readonly ptr: Pointer, readonly name: string) {}

  get fd(): number {
    return libbpf.mapFd(this.ptr);
  }
  get type(): number {
    return libbpf.mapType(this.ptr);
  }
  get keySize(): number {
    return libbpf.mapKeySize(this.ptr);
  }
  get valueSize(): number {
    return libbpf.mapValueSize(this.ptr);
  }
  get maxEntries(): number {
    return libbpf.mapMaxEntries(this.ptr);
  }
  /** Resize before load (e.g. a hash map sized by an option). */
  set maxEntries(n: number) {
    const err = libbpf.mapSetMaxEntries(this.ptr, n);
    if (err < 0) throw new RbtraceError(`cannot resize map ${this.name}: ${errnoText(err)}`);
  }
  /**
   * Before load: false leaves the map uncreated (a map of a type this kernel
   * lacks, used only by programs not loaded; a loaded program that uses it
   * fails to load).
   */
  set autocreate(on: boolean) {
    const err = libbpf.mapSetAutocreate(this.ptr, on);
    if (err < 0) throw new RbtraceError(`cannot set autocreate of map ${this.name}: ${errnoText(err)}`);
  }
  get perCpu(): boolean {
    return PERCPU_TYPES.has(this.type);
  }
  /** Bytes of one lookup's value: per-CPU maps hold ncpu slots of roundup(size, 8). */
  get valueBufferSize(): number {
    return this.perCpu ? possibleCpus() * roundUp8(this.valueSize) : this.valueSize;
  }

  lookupRaw(key: Uint8Array): Uint8Array | undefined {
    const value = new Uint8Array(this.valueBufferSize);
    const err = libbpf.mapLookupElem(this.fd, key, value);
    if (err === -ENOENT) return undefined;
    if (err < 0) throw new RbtraceError(`lookup in map ${this.name} failed: ${errnoText(err)}`);
    return value;
  }

  updateRaw(key: Uint8Array, value: Uint8Array, flags = 0): void {
    const err = libbpf.mapUpdateElem(this.fd, key, value, flags);
    if (err < 0) throw new RbtraceError(`update of map ${this.name} failed: ${errnoText(err)}`);
  }

  deleteRaw(key: Uint8Array): boolean {
    const err = libbpf.mapDeleteElem(this.fd, key);
    if (err === -ENOENT) return false;
    if (err < 0) throw new RbtraceError(`delete in map ${this.name} failed: ${errnoText(err)}`);
    return true;
  }

  /** Every key, read before any is deleted (a snapshot of a moving map). */
  keysRaw(): Uint8Array[] {
    const keys: Uint8Array[] = [];
    let prev: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(this.keySize);
      const err = libbpf.mapGetNextKey(this.fd, prev, next);
      if (err === -ENOENT) break;
      if (err < 0) throw new RbtraceError(`iterating map ${this.name} failed: ${errnoText(err)}`);
      keys.push(next);
      prev = next;
      if (keys.length > 10_000_000) break; // a map being refilled as fast as we read it
    }
    return keys;
  }

  /**
   * Read and delete every entry: one batch syscall where the kernel has it
   * (hash maps, 5.6+), else key by key. Arrays cannot be deleted from:
   * use entries() and zero them instead.
   */
  drainRaw(): [Uint8Array, Uint8Array][] {
    const batched = this.drainBatch();
    if (batched) return batched;
    const out: [Uint8Array, Uint8Array][] = [];
    for (const k of this.keysRaw()) {
      const v = this.lookupRaw(k);
      if (v && this.deleteRaw(k)) out.push([k, v]);
    }
    return out;
  }

  private drainBatch(): [Uint8Array, Uint8Array][] | undefined {
    const chunk = Math.max(1, Math.min(this.maxEntries, 4096));
    const vsize = this.valueBufferSize;
    const keys = new Uint8Array(chunk * this.keySize);
    const values = new Uint8Array(chunk * vsize);
    const outBatch = new Uint8Array(Math.max(this.keySize, 8));
    const inBatch = new Uint8Array(Math.max(this.keySize, 8));
    const out: [Uint8Array, Uint8Array][] = [];
    let first = true;
    for (;;) {
      const count = new Uint32Array([chunk]);
      const err = libbpf.mapLookupAndDeleteBatch(this.fd, first ? null : inBatch, outBatch, keys, values, count, null);
      const errno = err < 0 ? -err : 0;
      if (errno && errno !== ENOENT) {
        if (first && (errno === 22 || errno === 95 || errno === 524)) return undefined; // no batch ops for this map type
        throw new RbtraceError(`draining map ${this.name} failed: ${errnoText(errno)}`);
      }
      for (let i = 0; i < count[0]; i++) {
        out.push([keys.slice(i * this.keySize, (i + 1) * this.keySize), values.slice(i * vsize, (i + 1) * vsize)]);
      }
      if (errno === ENOENT) return out; // no more entries
      inBatch.set(outBatch);
      first = false;
    }
  }

  /** Typed view of this map. */
  typed<K, V>(keyLayout: StructLayout<K>, valueLayout: StructLayout<V>): TypedMap<K, V> {
    return new TypedMap(this, keyLayout, valueLayout);
  }
}

export class TypedMap<K, V> {
  constructor(readonly map: BpfMap, readonly keyLayout: StructLayout<K>, readonly valueLayout: StructLayout<V>) {
    if (map.keySize !== keyLayout.size) {
      throw new Error(`map ${map.name}: key is ${map.keySize} bytes, layout ${keyLayout.name} is ${keyLayout.size}`);
    }
    if (map.valueSize !== valueLayout.size) {
      throw new Error(`map ${map.name}: value is ${map.valueSize} bytes, layout ${valueLayout.name} is ${valueLayout.size}`);
    }
  }

  /** For a per-CPU map: one value per CPU. */
  lookupPerCpu(key: Partial<K>): V[] | undefined {
    const raw = this.map.lookupRaw(this.keyLayout.encode(key));
    return raw && this.decodeValues(raw);
  }

  /** The value (per-CPU maps: summed over CPUs). */
  lookup(key: Partial<K>): V | undefined {
    const raw = this.map.lookupRaw(this.keyLayout.encode(key));
    return raw && this.foldValue(raw);
  }

  update(key: Partial<K>, value: Partial<V>, flags = 0): void {
    let bytes = this.valueLayout.encode(value);
    if (this.map.perCpu) {
      // the same value in every CPU's slot
      const slot = roundUp8(this.valueLayout.size);
      const all = new Uint8Array(possibleCpus() * slot);
      for (let c = 0; c < possibleCpus(); c++) all.set(bytes, c * slot);
      bytes = all;
    }
    this.map.updateRaw(this.keyLayout.encode(key), bytes, flags);
  }

  delete(key: Partial<K>): boolean {
    return this.map.deleteRaw(this.keyLayout.encode(key));
  }

  keys(): K[] {
    return this.map.keysRaw().map((k) => this.keyLayout.decode(k));
  }

  /** Snapshot of every entry (per-CPU values summed). */
  entries(): [K, V][] {
    const out: [K, V][] = [];
    for (const k of this.map.keysRaw()) {
      const v = this.map.lookupRaw(k);
      if (v) out.push([this.keyLayout.decode(k), this.foldValue(v)]);
    }
    return out;
  }

  /** Read and delete every entry (per-CPU values summed). */
  drain(): [K, V][] {
    return this.map.drainRaw().map(([k, v]) => [this.keyLayout.decode(k), this.foldValue(v)]);
  }

  private decodeValues(raw: Uint8Array): V[] {
    if (!this.map.perCpu) return [this.valueLayout.decode(raw)];
    const slot = roundUp8(this.valueLayout.size);
    const dv = toDataView(raw);
    const out: V[] = [];
    for (let c = 0; c < possibleCpus(); c++) out.push(this.valueLayout.decode(dv, c * slot));
    return out;
  }

  private foldValue(raw: Uint8Array): V {
    const values = this.decodeValues(raw);
    return values.length === 1 ? values[0] : sumValues(values);
  }
}

/**
 * Fold per-CPU values: numbers and numeric arrays add up, except fields
 * whose name says max/min, which take the max/min. Other fields come from
 * the first CPU that has a non-zero one.
 */
export function sumValues<V>(values: V[]): V {
  const out: Record<string, unknown> = { ...(values[0] as Record<string, unknown>) };
  for (const v of values.slice(1)) {
    for (const [name, x] of Object.entries(v as Record<string, unknown>)) {
      const acc = out[name];
      if (typeof x === 'number' && typeof acc === 'number') out[name] = foldNumber(name, acc, x);
      else if (Array.isArray(x) && Array.isArray(acc)) out[name] = acc.map((a, i) => (typeof a === 'number' ? foldNumber(name, a, x[i]) : a));
      else if (!acc && x) out[name] = x;
    }
  }
  return out as V;
}

function foldNumber(name: string, a: number, b: number): number {
  if (/(^|_)max($|_)/.test(name)) return Math.max(a, b);
  if (/(^|_)min($|_)/.test(name)) return a === 0 ? b : b === 0 ? a : Math.min(a, b);
  return a + b;
}

function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

/** Sum of a per-CPU u64 counter at index 0 of an array map (e.g. rbtrace_lost). */
export function readPerCpuCounter(map: BpfMap, index = 0): number {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, index, true);
  const raw = map.lookupRaw(key);
  if (!raw) return 0;
  const dv = toDataView(raw);
  let total = 0;
  const n = map.perCpu ? possibleCpus() : 1;
  const slot = map.perCpu ? roundUp8(map.valueSize) : map.valueSize;
  for (let c = 0; c < n; c++) total += dv.getUint32(c * slot, true) + dv.getUint32(c * slot + 4, true) * 4294967296;
  return total;
}

