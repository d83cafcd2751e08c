// Processes: validating pids, finding the libraries a process maps and
// the commands a shell would run. Starting `-- CMD` lives in gate.ts.
import { execFileSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { RbtraceError } from '../errors.js';
import { archInfo, hostArch } from '../bpf/arch.js';
import { pidParser } from '../parsers.js';
import { BinaryFile, openExecutable, openFile, openMapping, readMaps } from './procfiles.js';

/** Kept for the SDK: src/core/parsers.ts's pidParser. */
export function parsePid(text: string, flag = '-p'): number {
  return pidParser(flag)(text);
}

export function pidExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

export function checkPidExists(pid: number): void {
  if (!pidExists(pid)) throw new RbtraceError(`no process with pid ${pid}`, { hint: 'check the pid with ps or pgrep' });
}

export function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trimEnd();
  } catch {
    return '?';
  }
}

/**
 * When a process started, in clock ticks since boot (/proc/PID/stat's
 * starttime, field 22; counted after the comm, which may hold spaces and
 * parentheses): undefined when it is gone.
 */
export function processStartTicks(pid: number | 'self'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const v = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Thread group id (the "pid" users mean) of a thread id. */
export function tgidOf(tid: number): number | undefined {
  try {
    const m = readFileSync(`/proc/${tid}/status`, 'utf8').match(/^Tgid:\s*(\d+)/m);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Files mapped into a process, from /proc/PID/maps (paths as that process names them). */
export function mappedFiles(pid: number): string[] {
  return [...new Set(readMaps(pid).map((m) => m.path))];
}

/** Does `path` look like library `name` ('c' -> libc.so.6, 'ruby' -> libruby-3.1.so.3.1, 'libjemalloc.so.2')? */
export function libraryMatches(path: string, name: string): boolean {
  const base = path.split('/').pop()!;
  if (base === name) return true;
  const stem = name.replace(/^lib/, '').replace(/\.so.*$/, '');
  return new RegExp(`^lib${escapeRegExp(stem)}([-.][0-9.]+)?\\.so(\\.|$)`).test(base) ||
    (name.includes('.so') && base.startsWith(name));
}

function isElf(path: string): boolean {
  const head = Buffer.alloc(4);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    return readSync(fd, head, 0, 4, 0) === 4 && head.toString('latin1') === '\x7fELF';
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The library `name` as mapped by process `pid`, if it is: opened as the
 * mapped object (procfiles.ts), so it is the file the process runs, in its
 * own mount namespace, whatever sits at that path now.
 */
export function libraryOfPid(pid: number, name: string): BinaryFile | undefined {
  const m = readMaps(pid).find((mm) => libraryMatches(mm.path, name));
  return m ? openMapping(pid, m) : undefined;
}

/** The library `name` as the dynamic linker would find it (ldconfig's cache, then the usual directories). */
export function systemLibrary(name: string): string | undefined {
  try {
    const out = execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const archTag = archInfo()?.ldconfigTag ?? '';
    const candidates: string[] = [];
    for (const line of out.split('\n')) {
      const m = line.match(/^\s*(\S+) \(([^)]*)\) => (\S+)$/);
      if (m && libraryMatches(m[1], name) && (!archTag || m[2].includes(archTag) || !m[2].includes(','))) candidates.push(m[3]);
    }
    if (candidates.length) return candidates[0];
  } catch {
    // no ldconfig: fall through to the directories
  }
  // This architecture's multiarch directories first (a foreign one's library would not load).
  const dirs = [...hostArch().libDirs, '/usr/lib64', '/lib64', '/usr/lib', '/lib', '/usr/local/lib'];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue;
    }
    // Without ldconfig's cache (a system where it was never run), a -dev
    // package's libc.so, a linker script, would sort first: only ELF files.
    const hit = entries.filter((e) => libraryMatches(e, name)).sort().find((e) => isElf(join(dir, e)));
    if (hit) return join(dir, hit);
  }
  return undefined;
}

/**
 * Resolve what a user wrote after --lib (a path, or a name such as `c`,
 * `ruby`, `libjemalloc.so.2`) to a file: for a pid, the file that process
 * maps; otherwise the system's. Every file is opened checked (procfiles.ts).
 */
export function findLibrary(nameOrPath: string, pid?: number): BinaryFile {
  if (nameOrPath.includes('/')) return givenFile(nameOrPath, pid);
  if (pid) {
    const mapped = libraryOfPid(pid, nameOrPath);
    if (mapped) return mapped;
    const exe = executableOf(pid);
    if (exe && libraryMatches(exe.name, nameOrPath)) return exe;
  }
  const found = systemLibrary(nameOrPath);
  if (!found) throw new RbtraceError(`cannot find library '${nameOrPath}'${pid ? ` in process ${pid} or on this system` : ''}`, { hint: 'give its full path with --lib' });
  return openFile(found);
}

/**
 * A path given with --lib: with -p, a path the process maps is that mapped
 * object (in the process's mount namespace); any other path is opened as
 * given. Either way a regular file, opened without blocking.
 */
export function givenFile(path: string, pid?: number, flag = '--lib'): BinaryFile {
  if (pid) {
    const abs = resolve(path);
    const m = readMaps(pid).find((mm) => mm.path === abs);
    if (m) return openMapping(pid, m);
  }
  try {
    return openFile(path);
  } catch (err) {
    if (err instanceof RbtraceError) throw new RbtraceError(`${flag}${err.message.startsWith('cannot') ? ':' : ''} ${err.message}`, { hint: err.hint ?? `check the path given to ${flag}` });
    throw err;
  }
}

/** The executable process `pid` runs, opened through /proc/PID/exe (the very file, in any mount namespace). */
export function executableOf(pid: number): BinaryFile | undefined {
  return openExecutable(pid);
}

/** Resolve a command name through PATH the way a shell would. */
export function resolveCommand(cmd: string): string | undefined {
  const candidates = cmd.includes('/') ? [cmd] : (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).map((d) => join(d || '.', cmd));
  for (const c of candidates) {
    try {
      if (statSync(c).isFile()) {
        accessSync(c, constants.X_OK);
        return c;
      }
    } catch {
      // not this one
    }
  }
  return undefined;
}
