// rbtrace build NAME.bpf.c: a user's BPF C compiled the way rbtrace compiles
// its own (scripts/build-bpf.sh): clang -target bpf -O2 -g against a
// vmlinux.h of the running kernel's BTF and rbtrace's shipped headers, BTF
// finalised by `bpftool gen object`, then the typed bindings generated next
// to the object (generator.ts). clang and bpftool are needed here only: the
// object then loads on any kernel with BTF (CO-RE).
import { execFileSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { packageRoot } from '../core/package.js';
import { RbtraceError, UsageError } from '../core/errors.js';
import { generateBindings } from './generator.js';
import { directoryRefusal, openDirectory, writeInDirectory } from '../core/output/file.js';

/** The kernel BTF vmlinux.h is made from (RBTRACE_BUILD_BTF, as for scripts/build-bpf.sh). */
const kernelBtf = () => process.env.RBTRACE_BUILD_BTF || '/sys/kernel/btf/vmlinux';

/** The Debian package that provides each build tool, for the error that says it is missing. */
const PACKAGES: Record<string, string> = { clang: 'clang', bpftool: 'bpftool' };

/** An executable on PATH, or a one-line error naming the package to install. */
export function findTool(name: string, path = process.env.PATH ?? ''): string {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  throw new RbtraceError(`${name} not found on PATH (it is needed to build BPF objects)`,
    { hint: `install the Debian package ${PACKAGES[name] ?? name}: apt-get install ${PACKAGES[name] ?? name}` });
}

/** clang's __TARGET_ARCH_ for this machine (bpf_tracing.h's PT_REGS macros). */
export function targetArch(arch: string = process.arch): string {
  switch (arch) {
    case 'x64': return 'x86';
    case 'arm64': return 'arm64';
    default: throw new RbtraceError(`rbtrace build does not know clang's target arch for ${arch}`, { hint: 'x86_64 and arm64 are supported' });
  }
}

/** Where vmlinux.h is cached: one per kernel BTF (release and size), made once. */
export function cacheDir(): string {
  return process.env.RBTRACE_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rbtrace');
}

/** vmlinux.h for the kernel whose BTF is `btf`, from the cache or made now with bpftool. */
export function vmlinuxHeader(bpftool: string, btf = kernelBtf()): string {
  let size: number;
  try {
    size = statSync(btf).size;
  } catch {
    throw new RbtraceError(`no kernel BTF at ${btf}`, { hint: 'rbtrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, or RBTRACE_BUILD_BTF=FILE' });
  }
  const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const dir = join(cacheDir(), 'vmlinux', `${release}-${size}`);
  const header = join(dir, 'vmlinux.h');
  if (existsSync(header)) return dir;
  mkdirSync(dir, { recursive: true });
  const text = execFileSync(bpftool, ['btf', 'dump', 'file', btf, 'format', 'c'], { maxBuffer: 1 << 30 });
  // Written aside and renamed: two builds at once never read half a header.
  const tmp = `${header}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, header);
  return dir;
}

export interface BuildResult {
  object: string;
  bindings: string;
}

/**
 * Compile `source` (NAME.bpf.c) to NAME.bpf.o and NAME.skel.ts beside it.
 * clang and bpftool write only in a private directory of ours (mkdtemp,
 * 0700); the two results are then written beside the source by the rules
 * of --save (src/core/output-file.ts): never through a link, each under a
 * temporary name renamed into place, and not in another user's directory
 * unless `othersDir` (root building in /home/bob would otherwise follow
 * whatever bob plants there).
 */
export function buildTool(source: string, opts: { log?: (line: string) => void; othersDir?: boolean } = {}): BuildResult {
  const src = resolve(source);
  if (!/\.bpf\.c$/.test(src)) throw new UsageError(`${source}: not a NAME.bpf.c file`, 'rbtrace build wants the BPF C file, e.g. rbtrace build demo.bpf.c');
  if (!existsSync(src)) throw new UsageError(`${source}: no such file`, 'rbtrace new NAME writes a starter');
  const dir = dirname(src);
  const denied = directoryRefusal(dir, { othersDir: opts.othersDir });
  if (denied) throw new UsageError(`will not write in ${dir}: ${denied}`, 'build in a directory of your own, or pass --others-dir if you trust its owner');
  const name = basename(src, '.bpf.c');
  const object = join(dir, `${name}.bpf.o`);
  const bindings = join(dir, `${name}.skel.ts`);
  for (const out of [object, bindings]) {
    let link = false;
    try { link = lstatSync(out).isSymbolicLink(); } catch { /* absent */ }
    if (link) throw new UsageError(`will not replace ${out}: it is a symbolic link`, 'remove it first');
  }
  const clang = findTool('clang');
  const bpftool = findTool('bpftool');
  checkLibbpfHeaders();
  const vmlinuxDir = vmlinuxHeader(bpftool);
  opts.log?.(`vmlinux.h: ${join(vmlinuxDir, 'vmlinux.h')}`);
  const work = mkdtempSync(join(tmpdir(), 'rbtrace-build-'));
  try {
    const tmp = join(work, `${name}.tmp.o`);
    const built = join(work, `${name}.bpf.o`);
    const cflags = [`-D__TARGET_ARCH_${targetArch()}`, '-I', vmlinuxDir, '-I', join(packageRoot(), 'src/bpf/include'), '-I', dir];
    // An undefined macro used as a program (BPF_UPROBE(prog, ...) with
    // headers that lack it) is otherwise a K&R function named after the
    // macro: implicit int and implicit declarations are errors here.
    const args = ['-O2', '-g', '-target', 'bpf', ...cflags, '-Wall', '-Wno-unused-function',
      '-Werror=implicit-int', '-Werror=implicit-function-declaration', '-c', src, '-o', tmp];
    opts.log?.(`${clang} ${args.join(' ')}`);
    run(clang, args, `clang could not compile ${basename(src)}`, MACRO_HINT);
    run(bpftool, ['gen', 'object', built, tmp], `bpftool could not finalise ${basename(object)}`);
    // The structs shared with user space: NAME.h if there is one, else the .bpf.c itself.
    const header = existsSync(join(dir, `${name}.h`)) ? join(dir, `${name}.h`) : src;
    const text = generateBindings({ object: built, header, cflags });
    // A program named like a libbpf macro is a macro these headers lack,
    // compiled as an old-style function of that name (BPF_UPROBE(prog)).
    const macroProgram = [...text.matchAll(/^ {4}(BPF_[A-Z0-9_]+): \{ section:/gm)].map((m) => m[1])[0];
    if (macroProgram) {
      throw new RbtraceError(`${basename(src)}: a program is named ${macroProgram}: that macro is not defined by the libbpf headers in /usr/include/bpf`,
        { hint: "Debian 12's libbpf 1.1 has no BPF_UPROBE/BPF_URETPROBE: use BPF_KPROBE/BPF_KRETPROBE in a SEC(\"uprobe\") program" });
    }
    const fd = openDirectory(dir);
    try {
      writeInDirectory(fd, basename(object), readFileSync(built));
      writeInDirectory(fd, basename(bindings), text);
    } catch (err) {
      throw new RbtraceError(`cannot write in ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'check the directory and its permissions' });
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { object, bindings };
}

/** rbtrace.bpf.h includes <bpf/bpf_helpers.h>: libbpf's headers, which clang looks for in /usr/include. */
function checkLibbpfHeaders(): void {
  const include = '/usr/include';
  if (!existsSync(join(include, 'bpf/bpf_helpers.h'))) {
    throw new RbtraceError(`libbpf's headers are not installed (no ${join(include, 'bpf/bpf_helpers.h')})`,
      { hint: 'install the Debian package libbpf-dev: apt-get install libbpf-dev' });
  }
}

/**
 * What to say when clang fails on a libbpf macro the installed headers lack
 * (BPF_UPROBE is not in Debian 12's libbpf 1.1): the source line clang quotes
 * names it, and libbpf's headers do not define it.
 */
function MACRO_HINT(stderr: string): string | undefined {
  let headers = '';
  try { headers = readdirSync('/usr/include/bpf').filter((f) => f.endsWith('.h')).map((f) => readFileSync(join('/usr/include/bpf', f), 'utf8')).join('\n'); } catch { /* no headers: said elsewhere */ }
  const macro = [...stderr.matchAll(/\b(BPF_[A-Z][A-Z_]*)\s*\(/g)].map((m) => m[1]).find((name) => !new RegExp(`#define ${name}\\b`).test(headers));
  if (!macro) return undefined;
  return `${macro} is not defined by the libbpf headers in /usr/include/bpf (Debian 12's libbpf 1.1 has no BPF_UPROBE/BPF_URETPROBE: use BPF_KPROBE/BPF_KRETPROBE in a SEC("uprobe") program)`;
}

function run(file: string, args: string[], what: string, hintOf?: (stderr: string) => string | undefined): void {
  try {
    execFileSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    const first = stderr.split('\n').find((l) => /error/.test(l)) ?? stderr.split('\n')[0] ?? '';
    throw new RbtraceError(`${what}: ${first}`, { details: stderr, hint: hintOf?.(stderr) });
  }
}
