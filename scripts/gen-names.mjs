#!/usr/bin/env node
// Generate src/generated/names.ts (errno and syscall name tables) from the
// uapi headers of this machine (Debian: linux-libc-dev), so that the numbers
// can never drift from the kernel's and no table is typed by hand.
//
// x86_64 has a flat list (asm/unistd_64.h). arm64 uses the generic table
// (asm-generic/unistd.h), which is full of conditionals and __NR3264_ aliases,
// so that file is run through a tiny preprocessor with arm64's configuration.
//
// Usage: node scripts/gen-names.mjs [--include /usr/include] [--out src/generated/names.ts]
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1] : def;
};
const inc = opt('--include', '/usr/include');
const out = resolve(root, opt('--out', 'src/generated/names.ts'));

function read(rel, hint) {
  const p = join(inc, rel);
  if (!existsSync(p)) {
    console.error(`gen-names: ${p} not found (${hint})`);
    process.exit(1);
  }
  return readFileSync(p, 'utf8');
}

// Join backslash-continued lines and drop comments: enough C for these headers.
function cleanLines(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/.*$/gm, '')
    .replace(/\\\n/g, ' ')
    .split('\n');
}

/**
 * Evaluate a #if expression over `macros` (name -> value string). Supports
 * defined(X), defined X, integers, macro names, ! && || == != < > <= >= and
 * parentheses: everything asm-generic/unistd.h uses.
 */
function evalCond(expr, macros) {
  const js = expr
    .replace(/defined\s*\(\s*(\w+)\s*\)|defined\s+(\w+)/g, (_, a, b) => (macros.has(a ?? b) ? '1' : '0'))
    .replace(/\b[A-Za-z_]\w*\b/g, (name) => {
      const v = macros.get(name);
      return v !== undefined && /^\s*-?\d+\s*$/.test(v) ? v.trim() : '0'; // C: unknown identifiers are 0
    });
  if (!/^[\d\s()!&|=<>-]*$/.test(js)) throw new Error(`gen-names: cannot evaluate #if ${expr}`);
  return Boolean(Function(`"use strict"; return (${js});`)());
}

/**
 * Run `text` through a minimal preprocessor with `predefined` macros and
 * return every macro defined on the active branches (later #define/#undef win).
 */
function preprocess(text, predefined) {
  const macros = new Map(Object.entries(predefined));
  const stack = []; // { active, taken, parentActive }
  const active = () => stack.every((s) => s.active);
  const code = []; // non-directive lines on active branches
  for (const raw of cleanLines(text)) {
    const m = /^\s*#\s*(\w+)\s*(.*?)\s*$/.exec(raw);
    if (!m) {
      if (active() && raw.trim()) code.push(raw.trim());
      continue;
    }
    const [, dir, rest] = m;
    switch (dir) {
      case 'if':
      case 'ifdef':
      case 'ifndef': {
        const parentActive = active();
        const cond =
          dir === 'if' ? evalCond(rest, macros) : dir === 'ifdef' ? macros.has(rest) : !macros.has(rest);
        stack.push({ active: parentActive && cond, taken: cond, parentActive });
        break;
      }
      case 'elif': {
        const top = stack.at(-1);
        const cond = !top.taken && evalCond(rest, macros);
        top.active = top.parentActive && cond;
        top.taken ||= cond;
        break;
      }
      case 'else': {
        const top = stack.at(-1);
        top.active = top.parentActive && !top.taken;
        top.taken = true;
        break;
      }
      case 'endif':
        stack.pop();
        break;
      case 'define':
        if (active()) {
          const d = /^(\w+)(?:\s+(.*))?$/.exec(rest);
          if (d) macros.set(d[1], d[2] ?? '');
        }
        break;
      case 'undef':
        if (active()) macros.delete(rest);
        break;
      default: // #include, #error...: not needed for these headers
    }
  }
  return { macros, code };
}

/** Resolve `value` through macro aliases to an integer (e.g. __NR_fcntl -> __NR3264_fcntl -> 25). */
function resolveNumber(value, macros, depth = 0) {
  const v = value.trim().replace(/^\((.*)\)$/, '$1').trim();
  if (/^\d+$/.test(v)) return Number(v);
  if (depth < 8 && macros.has(v)) return resolveNumber(macros.get(v), macros, depth + 1);
  // "(__NR_SYSCALL_BASE + 5)"-style arithmetic does not occur in these headers.
  return undefined;
}

/**
 * number -> name for every __NR_<name> macro. With `entries` (numbers that have
 * a table entry), macros naming no syscall (__NR_arch_specific_syscall, a
 * range marker) are left out.
 */
function syscallTable(macros, entries) {
  const table = {};
  for (const [name, value] of macros) {
    const m = /^__NR_(\w+)$/.exec(name);
    if (!m || m[1] === 'syscalls') continue; // __NR_syscalls is the table size
    const nr = resolveNumber(value, macros);
    if (nr === undefined || (entries && !entries.has(nr))) continue;
    table[nr] ??= m[1]; // first definition wins, as in the header's order
  }
  return table;
}

/** Numbers given an entry by __SYSCALL(nr, ...) / __SC_*(nr, ...) lines of the generic table. */
function tableEntries({ macros, code }) {
  const nrs = new Set();
  for (const line of code) {
    const m = /^__(?:SYSCALL|SC_\w+)\s*\(\s*(\w+)\s*,/.exec(line);
    const nr = m && resolveNumber(m[1], macros);
    if (nr !== undefined && nr !== null) nrs.add(nr);
  }
  return nrs;
}

// --- errno: asm-generic/errno-base.h (1..34) + asm-generic/errno.h (35..133).
// x86_64 and arm64 both use the generic numbers. Aliases (EWOULDBLOCK =
// EAGAIN, EDEADLOCK = EDEADLK) are #defined to another name: the canonical
// name is the one defined with a number, which comes first in the files.
const { macros: errnoMacros } = preprocess(
  read('asm-generic/errno-base.h', 'install linux-libc-dev') + '\n' + read('asm-generic/errno.h', 'install linux-libc-dev'),
  {},
);
const ERRNO = {};
for (const [name, value] of errnoMacros) {
  if (!/^E[A-Z0-9]+$/.test(name) || !/^\s*\d+\s*$/.test(value)) continue;
  ERRNO[Number(value)] ??= name;
}

// --- x86_64: a flat list of #define __NR_x N.
const x86 = syscallTable(
  preprocess(read('x86_64-linux-gnu/asm/unistd_64.h', 'install linux-libc-dev (amd64 uapi headers)'), {}).macros,
);

// --- arm64: the generic table with arm64's configuration
// (arch/arm64/include/uapi/asm/unistd.h and asm/bitsperlong.h): 64-bit,
// not compat, with renameat, new stat, set/getrlimit, clone3 and memfd_secret.
// __ARCH_WANT_TIME32_SYSCALLS is left undefined: on 64-bit the time syscalls
// are selected by "__BITS_PER_LONG != 32" instead, under their plain names.
// __ARCH_WANT_SYNC_FILE_RANGE2 is not arm64's (84 is sync_file_range).
const ARM64 = {
  __BITS_PER_LONG: '64',
  __aarch64__: '1',
  __ARCH_WANT_RENAMEAT: '',
  __ARCH_WANT_NEW_STAT: '',
  __ARCH_WANT_SET_GET_RLIMIT: '',
  __ARCH_WANT_SYS_CLONE3: '',
  __ARCH_WANT_MEMFD_SECRET: '',
};
const generic = preprocess(read('asm-generic/unistd.h', 'install linux-libc-dev'), ARM64);
const arm64 = syscallTable(generic.macros, tableEntries(generic));

// Sanity checks: a wrong parse must fail the build, not ship a bad table.
const expect = (table, nr, name, what) => {
  if (table[nr] !== name) {
    console.error(`gen-names: ${what} ${nr} is ${table[nr]}, expected ${name}: header parse is wrong`);
    process.exit(1);
  }
};
expect(ERRNO, 2, 'ENOENT', 'errno');
expect(ERRNO, 11, 'EAGAIN', 'errno');
expect(x86, 0, 'read', 'x86_64 syscall');
expect(x86, 59, 'execve', 'x86_64 syscall');
expect(arm64, 25, 'fcntl', 'arm64 syscall');
expect(arm64, 56, 'openat', 'arm64 syscall');
expect(arm64, 79, 'newfstatat', 'arm64 syscall');
expect(arm64, 222, 'mmap', 'arm64 syscall');
expect(arm64, 221, 'execve', 'arm64 syscall');

const obj = (table) =>
  '{\n' +
  Object.keys(table)
    .map(Number)
    .sort((a, b) => a - b)
    .map((k) => `    ${k}: ${JSON.stringify(table[k])},`)
    .join('\n') +
  '\n  }';

const ts = `// GENERATED by scripts/gen-names.mjs from ${inc} uapi headers. Do not edit.
// Regenerate: node scripts/gen-names.mjs

export const ERRNO_NAMES: Record<number, string> = ${obj(ERRNO).replace(/\n {2}/g, '\n')};

export const SYSCALLS: { x86_64: Record<number, string>; arm64: Record<number, string> } = {
  x86_64: ${obj(x86)},
  arm64: ${obj(arm64)},
};
`;

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, ts);
console.error(
  `gen-names: wrote ${out} (${Object.keys(ERRNO).length} errnos, ${Object.keys(x86).length} x86_64 and ${Object.keys(arm64).length} arm64 syscalls)`,
);
