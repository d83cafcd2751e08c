// cgroups: where cgroup v2 is mounted (/sys/fs/cgroup on unified hosts,
// /sys/fs/cgroup/unified on hybrid ones), --cgroup DIR, a process's v2
// cgroup path, the container or pod id a cgroup path shows, and the
// cgroup/container fields and columns of per-process rows (-P).
//
// --cgroup is applied in BPF (src/bpf/include/rbtrace.bpf.h): the open
// directory's fd goes into a BPF_MAP_TYPE_CGROUP_ARRAY and each program asks
// bpf_current_task_under_cgroup(), which every tracing program type has had
// since 4.9 (so 5.10 too) and which answers for the directory and everything
// below it in one O(1) ancestor check.
import { readdirSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { RbtraceError, UsageError } from '../errors.js';
import { escapeForTerminal } from '../output/format.js';

const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface CgroupLayout {
  /** v2: unified only; v1: legacy only; hybrid: both (v2 usually at /sys/fs/cgroup/unified); none. */
  kind: 'v1' | 'v2' | 'hybrid' | 'none';
  /** Mount point of the v2 hierarchy, when there is one. */
  v2Mount?: string;
  /** Mount points of v1 controllers. */
  v1Mounts: string[];
}

/** The cgroup mounts rbtrace sees (its own mount namespace's /proc/self/mountinfo). */
export function cgroupLayout(mountinfo?: string): CgroupLayout {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return { kind: 'none', v1Mounts: [] };
    }
  }
  let v2Mount: string | undefined;
  const v1Mounts: string[] = [];
  for (const line of text.split('\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    const mountPoint = unescapeMount(line.slice(0, sep).split(' ')[4] ?? '');
    if (fstype === 'cgroup2') v2Mount ??= mountPoint;
    else if (fstype === 'cgroup') v1Mounts.push(mountPoint);
  }
  const kind = v2Mount ? (v1Mounts.length ? 'hybrid' : 'v2') : v1Mounts.length ? 'v1' : 'none';
  return { kind, v2Mount, v1Mounts };
}

/** mountinfo writes space, tab, newline and backslash as \ooo. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export interface CgroupDir {
  /** Absolute path of the directory. */
  path: string;
  /** Its path inside the v2 hierarchy, as /proc/PID/cgroup's 0:: line shows it ("/" for the root). */
  relative: string;
  /** The cgroup id: the directory's inode, what bpf_get_current_cgroup_id() returns for tasks in it. */
  id: number;
}

/**
 * A --cgroup operand: an absolute cgroup v2 directory, or a path inside the
 * v2 hierarchy (as /proc/PID/cgroup shows it, e.g. /system.slice/x.service).
 */
export function resolveCgroupDir(text: string, flag = '--cgroup', layout = cgroupLayout()): CgroupDir {
  const mount = layout.v2Mount;
  if (!mount) {
    throw new RbtraceError(`${flag} needs cgroup v2, and none is mounted (cgroup layout: ${layout.kind})`,
      { hint: 'mount it: mount -t cgroup2 none /sys/fs/cgroup/unified' });
  }
  if (text.trim() === '') throw new UsageError(`${flag} wants a cgroup v2 directory, got ''`, `e.g. ${flag} ${mount}/system.slice`);
  const candidates = isAbsolute(text) ? [text, join(mount, text)] : [resolve(text), join(mount, text)];
  for (const path of candidates) {
    let st;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    if (!st.isDirectory()) continue;
    let type: number;
    try {
      type = Number(statfsSync(path).type);
    } catch {
      continue;
    }
    if (type !== CGROUP2_SUPER_MAGIC) continue;
    const abs = resolve(path);
    const rel = abs === mount ? '/' : abs.startsWith(mount + '/') ? abs.slice(mount.length) : abs;
    return { path: abs, relative: rel, id: st.ino };
  }
  throw new UsageError(`${flag} ${text}: not a cgroup v2 directory`, `cgroup v2 is mounted at ${mount}: give a directory below it`);
}

/** A process's cgroup v2 path (the 0:: line of /proc/PID/cgroup), or undefined. */
export function cgroupOfPid(pid: number): string | undefined {
  try {
    const m = /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
    return m ? m[1] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The container (or pod) a cgroup path shows, as container runtimes and
 * kubelet name their cgroups: docker-<id>.scope and /docker/<id> (Docker),
 * cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope (Podman),
 * and kubepods...pod<uid> (a Kubernetes pod, when no container scope is
 * below it). null when the path shows none.
 */
export function containerOf(cgroupPath: string | undefined): string | null {
  if (!cgroupPath) return null;
  const scope = /(?:^|\/)(?:docker|cri-containerd|crio|libpod|containerd)-([0-9a-f]{12,64})(?:\.scope)?(?:\/|$)/.exec(cgroupPath);
  if (scope) return scope[1];
  const plain = /\/(?:docker|libpod|lxc)\/([0-9a-f]{12,64})(?:\/|$)/.exec(cgroupPath);
  if (plain) return plain[1];
  const containerd = /\/kubepods[^/]*\/(?:[^/]+\/)*?pod[0-9a-f_-]+\/([0-9a-f]{64})(?:\/|$)/.exec(cgroupPath);
  if (containerd) return containerd[1];
  const pod = /(?:^|\/)kubepods[^/]*(?:\/[^/]+)*?[-/]pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:\/|$)/.exec(cgroupPath);
  if (pod) return `pod${pod[1].replace(/_/g, '-')}`;
  return null;
}

/** Whether cgroup path `p` is `dir` or below it (both as /proc/PID/cgroup shows them). */
export function cgroupUnder(p: string | undefined, dir: string): boolean {
  if (p === undefined) return false;
  return dir === '/' || p === dir || p.startsWith(dir.endsWith('/') ? dir : dir + '/');
}

/**
 * A process's cgroup fields in per-process rows and JSON: its v2 path (as
 * /proc/PID/cgroup shows it: relative to the v2 mount) and the container it
 * names (null: none). Empty when unknown (the process is gone, no v2).
 */
export interface CgroupFields {
  cgroup?: string;
  container?: string | null;
}

export function cgroupFields(path: string | undefined): CgroupFields {
  return path === undefined ? {} : { cgroup: path, container: containerOf(path) };
}

/** cgroupFields of a live process, read now from /proc/PID/cgroup ({} once it is gone). */
export function cgroupFieldsOfPid(pid: number): CgroupFields {
  return cgroupFields(cgroupOfPid(pid));
}

/** A container id as tables show it: its first 12 characters, as `docker ps` does (pod ids whole). */
export function shortContainer(id: string): string {
  return /^[0-9a-f]{13,}$/.test(id) ? id.slice(0, 12) : id;
}

/**
 * The table columns per-process rows get: CONTAINER when at least one row
 * is in a container (or `always`), CGROUP when --cgroup was given. Cells are
 * plain strings: the table escapes them like every traced string.
 */
export function cgroupColumns(rows: CgroupFields[], opts: { cgroup: boolean; container?: boolean }): { headers: string[]; cells: (r: CgroupFields) => string[] } {
  const container = opts.container ?? rows.some((r) => r.container);
  const headers = [...(opts.cgroup ? ['CGROUP'] : []), ...(container ? ['CONTAINER'] : [])];
  return {
    headers,
    cells: (r) => [
      ...(opts.cgroup ? [r.cgroup ?? '-'] : []),
      ...(container ? [r.container ? shortContainer(r.container) : '-'] : []),
    ],
  };
}

/**
 * The same for a per-process heading (mallocstat -P's "PID 42 (comm)"):
 * " cgroup PATH" with --cgroup, " container ID" when in one; escaped.
 */
export function cgroupSuffix(r: CgroupFields, withCgroup: boolean): string {
  let s = '';
  if (withCgroup && r.cgroup !== undefined) s += ` cgroup ${escapeForTerminal(r.cgroup)}`;
  if (r.container) s += ` container ${escapeForTerminal(shortContainer(r.container))}`;
  return s;
}

/**
 * cgroup ids (what bpf_get_current_cgroup_id() returns: the v2 directory's
 * inode) to paths relative to the v2 mount, from a walk of the hierarchy.
 * An id not known walks it again (at most every minRescanMs); one still not
 * found then belongs to a cgroup removed since, and is not looked for again.
 */
export class CgroupPaths {
  private readonly paths = new Map<number, string>();
  private readonly gone = new Set<number>();
  private lastWalk = 0;

  constructor(readonly mount: string | undefined = cgroupLayout().v2Mount, private readonly minRescanMs = 100) {
    this.walk();
  }

  /** Every cgroup path known after the last walk. */
  known(): IterableIterator<string> {
    return this.paths.values();
  }

  pathOf(id: number): string | undefined {
    if (!id || !this.mount) return undefined;
    const p = this.paths.get(id);
    if (p !== undefined || this.gone.has(id)) return p;
    if (Date.now() - this.lastWalk < this.minRescanMs) return undefined;
    this.walk();
    const again = this.paths.get(id);
    if (again === undefined) {
      if (this.gone.size > 65536) this.gone.clear();
      this.gone.add(id);
    }
    return again;
  }

  private walk(): void {
    this.lastWalk = Date.now();
    if (!this.mount) return;
    this.paths.clear();
    const visit = (abs: string, rel: string): void => {
      try {
        this.paths.set(statSync(abs).ino, rel || '/');
      } catch {
        return; // removed meanwhile
      }
      let entries;
      try {
        entries = readdirSync(abs, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) if (e.isDirectory()) visit(`${abs}/${e.name}`, `${rel}/${e.name}`);
    };
    visit(this.mount, '');
  }
}

/**
 * cgroup v2 paths by id (the directory's inode: what BPF reads from
 * cgroup->kn->id), from one walk of the v2 hierarchy. Ids not found (a
 * cgroup removed since) are absent.
 */
export function cgroupPathsById(layout = cgroupLayout()): Map<number, string> {
  const out = new Map<number, string>();
  const mount = layout.v2Mount;
  if (!mount) return out;
  const walk = (abs: string, rel: string, depth: number) => {
    try {
      out.set(statSync(abs).ino, rel);
      if (depth > 32) return;
      for (const e of readdirSync(abs, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(abs, e.name), rel === '/' ? `/${e.name}` : `${rel}/${e.name}`, depth + 1);
      }
    } catch {
      // removed while walked
    }
  };
  walk(mount, '/', 0);
  return out;
}
