// The typed skeleton of a BPF object, in the spirit of libbpf's skeletons and
// cilium/ebpf's bpf2go: a TypeScript module generated from the object's BTF
// (`bpftool -j btf dump file OBJ`) and its ELF symbol table, with
//   - ProgramName: every program (a global function in a SEC() section),
//     with its section and attach type;
//   - MapName: every map of the .maps section, with its type, size, and key
//     and value layouts;
//   - Rodata: every `const volatile` with its TypeScript type, and RODATA,
//     their offsets (set before load through BpfObject.setRodata);
//   - a StructLayout and an interface for every struct of the tool's header
//     (and every struct a map uses as key or value);
//   - ENUMS (enum constants of the header) and DEFINES (its object-like
//     macros, evaluated by clang's preprocessor, so `#define B (A * 2)` is
//     there too);
//   - SKELETON, which ties them together: BpfObject.open(SKELETON) and
//     ctx.load({ skeleton: SKELETON, ... }) check every name against it.
//
// 64-bit integers decode as JS numbers (magnitudes: counters, nanoseconds,
// bytes; past 2^53 they lose only relative precision of 1e-16) unless they
// are identities, whose low bits matter: pointers (BTF PTR) and fields tagged
// RBTRACE_BIG in the header (btf_decl_tag("rbtrace_big")) decode as bigint.
//
// Used by scripts/gen-bindings.mjs at build time (transpiled by esbuild, as
// this runs before tsc) and by `rbtrace build` for users' tools.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { ElfFile } from '../elf/elf.js';

export interface SkeletonOptions {
  /**
   * The tool's header (shared by its .bpf.c and, through this module, its
   * TypeScript): which structs, enums and macros belong to the tool. The
   * object's BTF also holds every kernel type its CO-RE reads touch.
   */
  header?: string;
  /** Module the generated code imports StructLayout and scalarLayout from. Default: '../core/skeleton/index.js' (src/generated/ in this repository); a user's tool uses 'rbtrace'. */
  sdkModule?: string;
  /** Extra clang flags to preprocess the header with (-I, -D) when it includes other headers. */
  cflags?: string[];
  /** The BTF dump (bpftool -j btf dump file OBJ) if already at hand (tests). */
  btf?: BtfDump;
}

export interface BtfType {
  id: number;
  kind: string;
  name?: string;
  type_id?: number;
  size?: number;
  encoding?: string;
  nr_elems?: number;
  bits_offset?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
  values?: { name: string; val: number }[];
  vars?: { type_id: number; offset: number; size: number }[];
  component_idx?: number;
}
export interface BtfDump { types: BtfType[] }

interface Field { name: string; offset: number; size: number; kind: string }
interface Struct { name: string; size: number; fields: Field[] }

/** BPF_MAP_TYPE_* by number (include/uapi/linux/bpf.h, a stable ABI). */
const MAP_TYPES = ['unspec', 'hash', 'array', 'prog_array', 'perf_event_array', 'percpu_hash', 'percpu_array',
  'stack_trace', 'cgroup_array', 'lru_hash', 'lru_percpu_hash', 'lpm_trie', 'array_of_maps', 'hash_of_maps', 'devmap',
  'sockmap', 'cpumap', 'xskmap', 'sockhash', 'cgroup_storage', 'reuseport_sockarray', 'percpu_cgroup_storage', 'queue',
  'stack', 'sk_storage', 'devmap_hash', 'struct_ops', 'ringbuf', 'inode_storage', 'task_storage', 'bloom_filter',
  'user_ringbuf', 'cgrp_storage', 'arena'];

const STT_FUNC = 2;
const STB_GLOBAL = 1;
const BIG_TAG = 'rbtrace_big';

/** Generate the skeleton module's text for a compiled BPF object. */
export function generateSkeleton(objPath: string, opts: SkeletonOptions = {}): string {
  const btf = opts.btf ?? readBtf(objPath);
  return new Generator(objPath, btf, opts).module();
}

/** `bpftool -j btf dump file OBJ`, parsed. */
export function readBtf(objPath: string): BtfDump {
  return JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', objPath], { maxBuffer: 1 << 28 }).toString());
}

export function pascal(name: string): string {
  return name.replace(/(^|_)(\w)/g, (_, __, c: string) => c.toUpperCase());
}

class Generator {
  private readonly byId: Map<number, BtfType>;
  private readonly header: string;
  private readonly structs: Struct[] = [];
  private readonly seen = new Set<string>();
  /** "struct id:member index" of members tagged rbtrace_big. */
  private readonly big = new Set<string>();

  constructor(private readonly objPath: string, private readonly btf: BtfDump, private readonly opts: SkeletonOptions) {
    this.byId = new Map(btf.types.map((t) => [t.id, t]));
    this.header = opts.header ? readFileSync(opts.header, 'utf8') : '';
    for (const t of btf.types) {
      if (t.kind === 'DECL_TAG' && t.name === BIG_TAG && t.component_idx !== undefined && t.component_idx >= 0) {
        this.big.add(`${t.type_id}:${t.component_idx}`);
      }
    }
  }

  /** Follow typedefs and qualifiers to the type that has a shape. */
  private resolve(id: number | undefined): BtfType | undefined {
    let t = id === undefined ? undefined : this.byId.get(id);
    while (t && ['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) t = this.byId.get(t.type_id!);
    return t;
  }

  private sizeOf(t: BtfType): number {
    switch (t.kind) {
      case 'INT': case 'ENUM': case 'ENUM64': case 'STRUCT': case 'UNION': case 'FLOAT': return t.size!;
      case 'PTR': return 8;
      case 'ARRAY': return t.nr_elems! * this.sizeOf(this.resolve(t.type_id)!);
      default: throw new Error(`no size for BTF kind ${t.kind}`);
    }
  }

  /** A field kind understood by src/core/bpf/layout.ts. */
  private kindOf(t: BtfType, big = false): string {
    switch (t.kind) {
      case 'INT': {
        if (t.name === '_Bool') return 'bool';
        const k = `${t.encoding === 'SIGNED' ? 's' : 'u'}${t.size! * 8}`;
        return big && t.size === 8 ? `${k}big` : k;
      }
      case 'ENUM': case 'ENUM64': return `${t.encoding === 'SIGNED' ? 's' : 'u'}${t.size! * 8}`;
      case 'PTR': return 'u64big';
      case 'ARRAY': {
        const elem = this.resolve(t.type_id)!;
        if (elem.kind === 'INT' && elem.size === 1 && elem.name === 'char') return `char[${t.nr_elems}]`;
        return `${this.kindOf(elem, big)}[${t.nr_elems}]`;
      }
      case 'STRUCT': return `struct ${t.name}`;
      case 'UNION': return `bytes[${t.size}]`;
      default: throw new Error(`unsupported BTF kind ${t.kind}`);
    }
  }

  private addStruct(name: string): void {
    if (this.seen.has(name)) return;
    const t = this.btf.types.find((x) => x.kind === 'STRUCT' && x.name === name);
    if (!t) {
      throw new Error(`struct ${name} (declared in ${this.opts.header}) is not in ${this.objPath}'s BTF: ` +
        `use it in the program or add RBTRACE_EXPORT_TYPE(struct ${name}, ${name}) to the .bpf.c`);
    }
    this.seen.add(name);
    const fields = t.members!.map((m, i) => {
      if (m.bitfield_size) throw new Error(`struct ${name}.${m.name}: bitfields are not supported`);
      const mt = this.resolve(m.type_id)!;
      const kind = this.kindOf(mt, this.big.has(`${t.id}:${i}`));
      let inner: BtfType | undefined = mt;
      while (inner?.kind === 'ARRAY') inner = this.resolve(inner.type_id);
      if (inner?.kind === 'STRUCT') this.addStruct(inner.name!);
      return { name: m.name, offset: m.bits_offset / 8, size: this.sizeOf(mt), kind };
    });
    this.structs.push({ name, size: t.size!, fields });
  }

  /** The layout expression of a map key or value type, and the TypeScript type it decodes to, if it has one. */
  private layoutOf(t: BtfType | undefined): { layout: string; type: string } | undefined {
    if (!t) return undefined;
    if (t.kind === 'INT' || t.kind === 'ENUM' || t.kind === 'ENUM64' || t.kind === 'PTR') {
      const kind = this.kindOf(t);
      return { layout: `scalarLayout(${JSON.stringify(kind)})`, type: `{ value: ${tsTypeOf(kind)} }` };
    }
    if (t.kind === 'STRUCT' && t.name) {
      try {
        this.addStruct(t.name);
        return { layout: `${t.name}_layout`, type: pascal(t.name) };
      } catch {
        return undefined; // a kernel struct with bitfields, say: raw bytes only
      }
    }
    return undefined;
  }

  private programs(): { name: string; section: string }[] {
    const elf = ElfFile.open(this.objPath);
    const funcs = new Set(this.btf.types.filter((t) => t.kind === 'FUNC').map((t) => t.name));
    const out: { name: string; section: string }[] = [];
    for (const s of elf.symbols()) {
      if (s.table !== '.symtab' || s.type !== STT_FUNC || s.bind !== STB_GLOBAL || s.shndx === 0) continue;
      const section = elf.sections[s.shndx]?.name ?? '';
      if (section === '.text' || section === '' || !funcs.has(s.name)) continue; // global subprograms are not programs
      out.push({ name: s.name, section });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  private maps(): MapInfo[] {
    const sec = this.btf.types.find((t) => t.kind === 'DATASEC' && t.name === '.maps');
    const out: MapInfo[] = [];
    for (const v of sec?.vars ?? []) {
      const vt = this.byId.get(v.type_id)!;
      const def = this.resolve(vt.type_id)!;
      const spec: Record<string, unknown> = {};
      let key: MapInfo['key'];
      let value: MapInfo['value'];
      for (const m of def.members ?? []) {
        const ptr = this.resolve(m.type_id);
        const target = ptr?.kind === 'PTR' ? this.resolve(ptr.type_id) : undefined;
        const n = target?.kind === 'ARRAY' ? target.nr_elems : undefined;
        switch (m.name) {
          case 'type': spec.type = MAP_TYPES[n ?? 0] ?? `type_${n}`; break;
          case 'max_entries': spec.maxEntries = n; break;
          case 'key_size': spec.keySize = n; break;
          case 'value_size': spec.valueSize = n; break;
          case 'key':
            if (target) { spec.keySize = this.sizeOf(target); key = this.layoutOf(target); }
            break;
          case 'value':
            if (target) { spec.valueSize = this.sizeOf(target); value = this.layoutOf(target); }
            break;
        }
      }
      out.push({ name: vt.name!, spec, key, value });
    }
    return out;
  }

  private rodata(): Record<string, Field> {
    const out: Record<string, Field> = {};
    const sec = this.btf.types.find((t) => t.kind === 'DATASEC' && t.name === '.rodata');
    for (const v of sec?.vars ?? []) {
      const vt = this.byId.get(v.type_id)!;
      const t = this.resolve(vt.type_id)!;
      out[vt.name!] = { name: vt.name!, offset: v.offset, size: v.size, kind: this.kindOf(t) };
    }
    return out;
  }

  private enums(): Record<string, number> {
    const enums: Record<string, number> = {};
    for (const m of this.header.matchAll(/^enum\s+(\w+)\s*\{/gm)) {
      const t = this.btf.types.find((x) => (x.kind === 'ENUM' || x.kind === 'ENUM64') && x.name === m[1]);
      for (const v of t?.values ?? []) enums[v.name] = v.val;
    }
    // Enum constants not in BTF (an enum unused by the program) still come from the header text.
    for (const m of this.header.matchAll(/^\s*([A-Z][A-Z0-9_]*)\s*=\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,/gm)) {
      if (!(m[1] in enums)) enums[m[1]] = Number(m[2]);
    }
    return enums;
  }

  module(): string {
    for (const m of this.header.matchAll(/^struct\s+(\w+)\s*\{/gm)) this.addStruct(m[1]);
    const programs = this.programs();
    const maps = this.maps();
    const rodata = this.rodata();
    const enums = this.enums();
    const defines = this.opts.header ? evaluateDefines(this.opts.header, this.opts.cflags) : {};
    const sdk = this.opts.sdkModule ?? '../core/skeleton/index.js';
    const file = basename(this.objPath);

    let out = `// Generated by rbtrace's skeleton generator (src/core/skeleton/gen.ts) from ${file}'s BTF. Do not edit.\n`;
    out += `/* eslint-disable */\n`;
    // Only what is used: a tool compiled with noUnusedLocals includes this module.
    const usesScalar = maps.some((m) => m.key?.layout.startsWith('scalarLayout(') || m.value?.layout.startsWith('scalarLayout('));
    const typedMaps = maps.filter((m) => m.key && m.value);
    const imports = [...(this.structs.length ? ['StructLayout'] : []), ...(usesScalar ? ['scalarLayout'] : []), 'type Skeleton',
      ...(typedMaps.length ? ['type TypedMapSpec'] : [])];
    out += `import { ${imports.join(', ')} } from ${JSON.stringify(sdk)};\n\n`;
    out += `export const OBJECT_FILE = ${JSON.stringify(file)};\n\n`;
    for (const s of this.structs) {
      out += `export interface ${pascal(s.name)} {\n`;
      for (const f of s.fields) out += `  ${f.name}: ${tsTypeOf(f.kind)};\n`;
      out += `}\n\n`;
    }
    for (const s of this.structs) {
      const nested = s.fields.map((f) => f.kind.match(/^struct (\w+)/)?.[1]).filter((n): n is string => n !== undefined);
      const deps = nested.length ? `, { ${[...new Set(nested)].map((n) => `${JSON.stringify(n)}: ${n}_layout`).join(', ')} }` : '';
      out += `export const ${s.name}_layout = new StructLayout<${pascal(s.name)}>(${JSON.stringify(s.name)}, ${s.size}, ${JSON.stringify(s.fields)}${deps});\n`;
    }
    out += `\n/** The object's programs (global functions in a SEC() section). */\n`;
    out += `export type ProgramName = ${union(programs.map((p) => p.name))};\n`;
    out += `/** The object's maps (.maps), rbtrace.bpf.h's included. */\n`;
    out += `export type MapName = ${union(maps.map((m) => m.name))};\n\n`;
    out += `/** The maps whose key and value types BTF gives, with those types: BpfObject.typedMap() returns them decoded. */\n`;
    out += `export interface MapTypes {\n`;
    for (const m of typedMaps) out += `  ${m.name}: TypedMapSpec<${m.key!.type}, ${m.value!.type}>;\n`;
    out += `}\n\n`;
    out += `/** The object's \`const volatile\` variables, as BpfObject.setRodata takes them. */\n`;
    out += `export interface Rodata {\n`;
    for (const f of Object.values(rodata)) out += `  ${f.name}: ${rodataTsType(f.kind)};\n`;
    out += `}\n\n`;
    const rodataSpec = Object.fromEntries(Object.values(rodata).map((f) => [f.name, { offset: f.offset, size: f.size, kind: f.kind }]));
    out += `export const RODATA = ${JSON.stringify(rodataSpec, null, 2)} as const;\n`;
    out += `\nexport const ENUMS = ${JSON.stringify(enums, null, 2)} as const;\n`;
    out += `\nexport const DEFINES = ${JSON.stringify(defines, null, 2)} as const;\n\n`;
    out += `export const SKELETON: Skeleton<ProgramName, MapName, Rodata, MapTypes> = {\n`;
    out += `  object: OBJECT_FILE,\n  programs: {\n`;
    for (const p of programs) {
      out += `    ${p.name}: { section: ${JSON.stringify(p.section)}, attach: ${JSON.stringify(p.section.split('/')[0])} },\n`;
    }
    out += `  },\n  maps: {\n`;
    for (const m of maps) {
      const parts = Object.entries(m.spec).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
      if (m.key) parts.push(`key: ${m.key.layout}`);
      if (m.value) parts.push(`value: ${m.value.layout}`);
      out += `    ${m.name}: { ${parts.join(', ')} },\n`;
    }
    out += `  },\n  rodata: RODATA,\n};\n`;
    return out;
  }
}

interface MapInfo {
  name: string;
  spec: Record<string, unknown>;
  key?: { layout: string; type: string };
  value?: { layout: string; type: string };
}

function union(names: string[]): string {
  return names.length ? names.map((n) => JSON.stringify(n)).join(' | ') : 'never';
}

/** The TypeScript type a StructLayout decodes a field kind to. */
export function tsTypeOf(kind: string): string {
  if (kind === 'bool') return 'boolean';
  if (/^[us]64big$/.test(kind)) return 'bigint';
  if (/^char\[/.test(kind)) return 'string';
  if (/^bytes\[/.test(kind)) return 'Uint8Array';
  const arr = kind.match(/^(.*)\[(\d+)\]$/);
  if (arr) return `${tsTypeOf(arr[1])}[]`;
  if (/^struct /.test(kind)) return pascal(kind.slice(7));
  return 'number';
}

/** What setRodata takes for a .rodata variable: 64-bit integers as a number or a bigint. */
function rodataTsType(kind: string): string {
  if (/^[us]64(big)?$/.test(kind)) return 'number | bigint';
  return tsTypeOf(kind);
}

/**
 * The header's object-like macros with an integer value, as the C compiler
 * sees them: clang's preprocessor expands each (so `#define B (A * 2)` is
 * A's value times 2), then the arithmetic left is evaluated here.
 */
export function evaluateDefines(headerPath: string, cflags: string[] = []): Record<string, number> {
  const text = readFileSync(headerPath, 'utf8');
  const names = [...text.matchAll(/^\s*#\s*define\s+([A-Za-z_]\w*)(?!\()[ \t]+\S/gm)].map((m) => m[1]);
  if (names.length === 0) return {};
  const dir = mkdtempSync(join(tmpdir(), 'rbtrace-defines-'));
  try {
    const src = join(dir, 'defines.c');
    writeFileSync(src, `#include "${resolvePath(headerPath)}"\n` + names.map((n) => `__rbtrace_define "${n}" = ${n} ;\n`).join(''));
    const pre = execFileSync('clang', ['-E', '-P', '-x', 'c', '-target', 'bpf', '-I', dirname(resolvePath(headerPath)), ...cflags, src],
      { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Record<string, number> = {};
    for (const m of pre.matchAll(/^__rbtrace_define "(\w+)" = (.*) ;$/gm)) {
      const v = evalInteger(m[2]);
      if (v !== undefined) out[m[1]] = v;
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An integer constant expression (literals, + - * / % << >> & | ^ ~, parentheses), or undefined. */
export function evalInteger(expr: string): number | undefined {
  const e = expr.trim();
  if (!e || !/^[\s\w()+\-*/%<>&|^~]+$/.test(e)) return undefined;
  // Every word must be an integer literal: C's integer arithmetic is done in
  // BigInt (so `/` truncates as C's does), literal suffixes (U, L) dropped.
  let ok = true;
  const js = e.replace(/\w+/g, (w) => {
    const m = w.match(/^(0[xX][0-9a-fA-F]+|\d+)[uUlL]*$/);
    if (!m) ok = false;
    return m ? `${BigInt(/^0\d/.test(m[1]) ? `0o${m[1].slice(1)}` : m[1])}n` : w;
  });
  if (!ok) return undefined;
  try {
    const v = Function(`"use strict"; return (${js});`)() as unknown;
    return typeof v === 'bigint' ? Number(v) : undefined;
  } catch {
    return undefined;
  }
}
