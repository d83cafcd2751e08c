#!/usr/bin/env node
// Typed bindings from a BPF object's BTF, as cilium/ebpf's bpf2go does.
//
//   node scripts/gen-bindings.mjs build/bpf/execsnoop.bpf.o src/bpf/execsnoop.h src/generated/execsnoop.ts
//
// Reads `bpftool -j btf dump file OBJ` and writes a TypeScript module with:
//   - a StructLayout (offsets and sizes straight from BTF) and an interface
//     for every struct and enum declared in the tool's header;
//   - the .rodata variables (name, offset, size, kind), so user space sets
//     `const volatile` filters without hand-typed offsets.
// The header is only used to know which structs belong to the tool (the
// object's BTF also holds every kernel type its CO-RE reads touch).
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, basename } from 'node:path';

const [objPath, headerPath, outPath] = process.argv.slice(2);
if (!objPath || !outPath) {
  console.error('usage: gen-bindings.mjs OBJ.bpf.o [HEADER.h|-] OUT.ts');
  process.exit(2);
}

const btf = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', objPath], { maxBuffer: 1 << 28 }).toString());
const byId = new Map(btf.types.map((t) => [t.id, t]));

const header = headerPath && headerPath !== '-' ? readFileSync(headerPath, 'utf8') : '';
const wantedStructs = [...header.matchAll(/^struct\s+(\w+)\s*\{/gm)].map((m) => m[1]);
const wantedEnums = [...header.matchAll(/^enum\s+(\w+)\s*\{/gm)].map((m) => m[1]);

/** Follow typedefs and qualifiers to the type that has a shape. */
function resolve(id) {
  let t = byId.get(id);
  while (t && ['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) t = byId.get(t.type_id);
  return t;
}

function sizeOf(t) {
  switch (t.kind) {
    case 'INT': case 'ENUM': case 'ENUM64': case 'STRUCT': case 'UNION': case 'FLOAT': return t.size;
    case 'PTR': return 8;
    case 'ARRAY': return t.nr_elems * sizeOf(resolve(t.type_id));
    default: throw new Error(`no size for BTF kind ${t.kind}`);
  }
}

/** A field kind string understood by src/core/layout.ts. */
function kindOf(t) {
  switch (t.kind) {
    case 'INT': {
      if (t.name === '_Bool') return 'bool';
      const signed = t.encoding === 'SIGNED' || (t.encoding === 'CHAR' && false);
      return `${signed ? 's' : 'u'}${t.size * 8}`;
    }
    case 'ENUM': case 'ENUM64': return `${t.encoding === 'SIGNED' ? 's' : 'u'}${t.size * 8}`;
    case 'PTR': return 'u64';
    case 'ARRAY': {
      const elem = resolve(t.type_id);
      if (elem.kind === 'INT' && elem.size === 1 && elem.name === 'char') return `char[${t.nr_elems}]`;
      return `${kindOf(elem)}[${t.nr_elems}]`;
    }
    case 'STRUCT': return `struct ${t.name}`;
    case 'UNION': return `bytes[${t.size}]`;
    default: throw new Error(`unsupported BTF kind ${t.kind}`);
  }
}

function tsTypeOf(kind) {
  if (kind === 'bool') return 'boolean';
  if (/^char\[/.test(kind)) return 'string';
  if (/^bytes\[/.test(kind)) return 'Uint8Array';
  if (/^struct /.test(kind)) return pascal(kind.slice(7));
  const arr = kind.match(/^(.*)\[(\d+)\]$/);
  if (arr) return `${tsTypeOf(arr[1])}[]`;
  return 'number';
}

function pascal(name) {
  return name.replace(/(^|_)(\w)/g, (_, __, c) => c.toUpperCase());
}

const structs = [];
const seen = new Set();
function addStruct(name) {
  if (seen.has(name)) return;
  const t = btf.types.find((x) => x.kind === 'STRUCT' && x.name === name);
  if (!t) throw new Error(`struct ${name} (declared in ${headerPath}) is not in ${objPath}'s BTF: ` +
    `use it in the program or add RBTRACE_EXPORT_TYPE(struct ${name}, ${name}) to the .bpf.c`);
  seen.add(name);
  const fields = t.members.map((m) => {
    if (m.bitfield_size) throw new Error(`struct ${name}.${m.name}: bitfields are not supported`);
    const mt = resolve(m.type_id);
    const kind = kindOf(mt);
    if (mt.kind === 'STRUCT') addStruct(mt.name);
    return { name: m.name, offset: m.bits_offset / 8, size: sizeOf(mt), kind };
  });
  structs.push({ name, size: t.size, fields });
}
wantedStructs.forEach(addStruct);

const enums = {};
for (const name of wantedEnums) {
  const t = btf.types.find((x) => (x.kind === 'ENUM' || x.kind === 'ENUM64') && x.name === name);
  if (!t) continue; // an enum only used for its constants may be absent from BTF: fall back to the header
  for (const v of t.values) enums[v.name] = v.val;
}
// Enum constants not in BTF (unused in the program) still come from the header text.
for (const m of header.matchAll(/^\s*([A-Z][A-Z0-9_]*)\s*=\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,/gm)) {
  if (!(m[1] in enums)) enums[m[1]] = Number(m[2]);
}
// #define NAME number: sizes the tool shares with user space.
const defines = {};
for (const m of header.matchAll(/^#define\s+([A-Z][A-Z0-9_]*)\s+\(?(\d+)\)?\s*(?:\/\*.*)?$/gm)) defines[m[1]] = Number(m[2]);

const rodata = {};
const datasec = btf.types.find((x) => x.kind === 'DATASEC' && x.name === '.rodata');
if (datasec) {
  for (const v of datasec.vars) {
    const vt = byId.get(v.type_id);
    const t = resolve(vt.type_id);
    rodata[vt.name] = { offset: v.offset, size: v.size, kind: kindOf(t) };
  }
}

const tool = basename(objPath).replace(/\.bpf\.o$/, '');
let out = `// Generated by scripts/gen-bindings.mjs from ${basename(objPath)}'s BTF. Do not edit.\n`;
out += `import { StructLayout } from '../core/layout.js';\n\n`;
out += `export const OBJECT_FILE = ${JSON.stringify(basename(objPath))};\n\n`;
for (const s of structs) {
  out += `export interface ${pascal(s.name)} {\n`;
  for (const f of s.fields) out += `  ${f.name}: ${tsTypeOf(f.kind)};\n`;
  out += `}\n\n`;
}
for (const s of structs) {
  const nested = s.fields.filter((f) => f.kind.startsWith('struct ')).map((f) => f.kind.slice(7));
  const deps = nested.length ? `, { ${[...new Set(nested)].map((n) => `${JSON.stringify(n)}: ${n}_layout`).join(', ')} }` : '';
  out += `export const ${s.name}_layout = new StructLayout<${pascal(s.name)}>(${JSON.stringify(s.name)}, ${s.size}, ${JSON.stringify(s.fields)}${deps});\n`;
}
out += `\nexport const RODATA = ${JSON.stringify(rodata, null, 2)} as const;\n`;
out += `\nexport const ENUMS = ${JSON.stringify(enums, null, 2)} as const;\n`;
out += `\nexport const DEFINES = ${JSON.stringify(defines, null, 2)} as const;\n`;

mkdirSync(dirname(outPath), { recursive: true });
writeFileSync(outPath, out);
console.error(`gen-bindings: ${tool}: ${structs.length} struct(s), ${Object.keys(rodata).length} rodata var(s)`);
