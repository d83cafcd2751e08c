// Struct layouts taken from a BPF object's BTF at build time
// (scripts/gen-bindings.mjs), used to decode ring-buffer records and map
// keys/values and to encode keys, values and .rodata constants. No offset
// is ever typed by hand.
//
// Field kinds: u8..u64, s8..s64, bool, char[N] (a NUL-terminated string),
// bytes[N] (raw), T[N] (array of a scalar or struct), struct NAME.
// 64-bit integers (u64, s64) decode to JS numbers: exact up to 2^53 (104
// days in ns, 8 PiB in bytes), and past it off by a relative 1e-16, which is
// what magnitudes (counters, durations, sizes) need. Identities whose low
// bits matter (pointers, ids, cookies) are u64big/s64big and decode to
// bigint: the generator gives that kind to BTF pointers and to header fields
// tagged RBTRACE_BIG (docs/SDK.md).

export interface FieldSpec {
  name: string;
  offset: number;
  size: number;
  kind: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

type Reader = (dv: DataView, at: number) => unknown;
type Writer = (dv: DataView, at: number, v: any) => void;

function scalarReader(kind: string): Reader | undefined {
  switch (kind) {
    case 'u8': return (dv, at) => dv.getUint8(at);
    case 's8': return (dv, at) => dv.getInt8(at);
    case 'bool': return (dv, at) => dv.getUint8(at) !== 0;
    case 'u16': return (dv, at) => dv.getUint16(at, true);
    case 's16': return (dv, at) => dv.getInt16(at, true);
    case 'u32': return (dv, at) => dv.getUint32(at, true);
    case 's32': return (dv, at) => dv.getInt32(at, true);
    case 'u64': return (dv, at) => dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 4294967296;
    case 's64': return (dv, at) => dv.getUint32(at, true) + dv.getInt32(at + 4, true) * 4294967296;
    case 'u64big': return (dv, at) => dv.getBigUint64(at, true);
    case 's64big': return (dv, at) => dv.getBigInt64(at, true);
  }
  return undefined;
}

function scalarWriter(kind: string): Writer | undefined {
  switch (kind) {
    case 'u8': case 's8': return (dv, at, v) => dv.setUint8(at, Number(v) & 0xff);
    case 'bool': return (dv, at, v) => dv.setUint8(at, v ? 1 : 0);
    case 'u16': case 's16': return (dv, at, v) => dv.setUint16(at, Number(v) & 0xffff, true);
    case 'u32': return (dv, at, v) => dv.setUint32(at, Number(v) >>> 0, true);
    case 's32': return (dv, at, v) => dv.setInt32(at, Number(v), true);
    case 'u64': case 'u64big': return (dv, at, v) => dv.setBigUint64(at, BigInt.asUintN(64, BigInt(v)), true);
    case 's64': case 's64big': return (dv, at, v) => dv.setBigInt64(at, BigInt.asIntN(64, BigInt(v)), true);
  }
  return undefined;
}

export function scalarSize(kind: string): number {
  const m = kind.match(/^[us](\d+)(?:big)?$/);
  if (m) return Number(m[1]) / 8;
  if (kind === 'bool') return 1;
  throw new Error(`not a scalar kind: ${kind}`);
}

/** Decode a C string stored in a fixed-size char array. */
export function decodeCString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return utf8.decode(nul < 0 ? bytes : bytes.subarray(0, nul));
}

export class StructLayout<T = Record<string, unknown>> {
  readonly fields: Readonly<Record<string, FieldSpec>>;
  private readonly readers: [string, Reader][];
  /** Each scalar field's reader, made once: read() is called per record on hot paths. */
  private readonly scalars: Record<string, Reader>;

  constructor(
    readonly name: string,
    readonly size: number,
    fieldList: FieldSpec[],
    nested: Record<string, StructLayout<any>> = {},
  ) {
    this.fields = Object.fromEntries(fieldList.map((f) => [f.name, f]));
    this.readers = fieldList.map((f) => [f.name, this.readerFor(f.kind, f.size, nested)]);
    this.scalars = Object.fromEntries(fieldList.flatMap((f) => {
      const r = scalarReader(f.kind);
      return r ? [[f.name, r]] : [];
    }));
  }

  private readerFor(kind: string, size: number, nested: Record<string, StructLayout<any>>): Reader {
    const scalar = scalarReader(kind);
    if (scalar) return scalar;
    if (kind.startsWith('char[')) {
      return (dv, at) => decodeCString(new Uint8Array(dv.buffer, dv.byteOffset + at, size));
    }
    if (kind.startsWith('bytes[')) {
      return (dv, at) => new Uint8Array(dv.buffer, dv.byteOffset + at, size).slice();
    }
    const arr = kind.match(/^(.*)\[(\d+)\]$/);
    if (!arr && kind.startsWith('struct ')) {
      const inner = nested[kind.slice(7)];
      if (!inner) throw new Error(`layout ${this.name}: no layout for ${kind}`);
      return (dv, at) => inner.decode(dv, at);
    }
    if (arr) {
      const n = Number(arr[2]);
      const elemSize = size / n;
      const elem = this.readerFor(arr[1], elemSize, nested);
      return (dv, at) => {
        const out = new Array(n);
        for (let i = 0; i < n; i++) out[i] = elem(dv, at + i * elemSize);
        return out;
      };
    }
    throw new Error(`layout ${this.name}: unsupported field kind ${kind}`);
  }

  /** Decode a record starting at `offset` of `src`. Missing tail bytes (a
   * record sent shorter than the struct) decode as absent fields. */
  decode(src: DataView | Uint8Array | ArrayBuffer, offset = 0): T {
    const dv = toDataView(src);
    const out: Record<string, unknown> = {};
    for (const [name, read] of this.readers) {
      const f = this.fields[name];
      if (offset + f.offset + f.size > dv.byteLength) continue;
      out[name] = read(dv, offset + f.offset);
    }
    return out as T;
  }

  /** Read one scalar field without decoding the rest (hot paths). */
  read<K extends keyof T & string>(src: DataView, name: K, offset = 0): T[K] extends bigint ? bigint : number {
    return this.scalars[name](src, offset + this.fields[name].offset) as T[K] extends bigint ? bigint : number;
  }

  /** The raw bytes of one field (e.g. a packed argument buffer). */
  bytes(src: DataView | Uint8Array | ArrayBuffer, name: keyof T & string, length?: number, offset = 0): Uint8Array {
    const dv = toDataView(src);
    const f = this.fields[name];
    const len = Math.max(0, Math.min(length ?? f.size, dv.byteLength - offset - f.offset));
    return new Uint8Array(dv.buffer, dv.byteOffset + offset + f.offset, len);
  }

  /** Encode scalar and string fields; absent fields are zero. */
  encode(value: Partial<T>): Uint8Array {
    const buf = new Uint8Array(this.size);
    const dv = new DataView(buf.buffer);
    for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
      const f = this.fields[name];
      if (!f) throw new Error(`layout ${this.name}: no field ${name}`);
      writeField(dv, f.offset, f.kind, f.size, v);
    }
    return buf;
  }
}

export function writeField(dv: DataView, at: number, kind: string, size: number, v: unknown): void {
  const scalar = scalarWriter(kind);
  if (scalar) return scalar(dv, at, v);
  if (kind.startsWith('char[') || kind.startsWith('bytes[')) {
    const bytes = typeof v === 'string' ? new TextEncoder().encode(v) : (v as Uint8Array);
    const target = new Uint8Array(dv.buffer, dv.byteOffset + at, size);
    target.fill(0);
    target.set(bytes.subarray(0, kind.startsWith('char[') ? size - 1 : size));
    return;
  }
  const arr = kind.match(/^(.*)\[(\d+)\]$/);
  if (arr && Array.isArray(v)) {
    const n = Number(arr[2]);
    const elemSize = size / n;
    v.slice(0, n).forEach((x, i) => writeField(dv, at + i * elemSize, arr[1], elemSize, x));
    return;
  }
  throw new Error(`cannot encode field kind ${kind}`);
}

export function toDataView(src: DataView | Uint8Array | ArrayBuffer): DataView {
  if (src instanceof DataView) return src;
  if (src instanceof ArrayBuffer) return new DataView(src);
  return new DataView(src.buffer, src.byteOffset, src.byteLength);
}

/** Layout of a plain scalar key or value (u32 pid, u64 counter, u64big address, ...). */
export function scalarLayout<K extends string>(kind: K): StructLayout<{ value: K extends `${string}big` ? bigint : number }> {
  const size = scalarSize(kind);
  return new StructLayout(kind, size, [{ name: 'value', offset: 0, size, kind }]);
}
