// Every ruby with USDT, not only the system's: the exporter looks at the
// processes every few seconds (/proc/PID/maps), finds the file holding each
// one's interpreter (a mapped libruby*.so*, or a statically linked ruby
// executable with the ruby:gc__* notes), and attaches the GC probes once per
// distinct file, by device and inode (a uprobe belongs to an inode: every
// process mapping it is traced, in any mount namespace). rbenv and
// ruby-build installs, a libruby copied into a container image: each is its
// own file. A file no process maps any more is detached and closed; the
// system's libruby (attached at start, so a new ruby is traced from its
// first GC) stays.
//
// A source may also keep files without the probes (`withoutProbes`: gcstat
// reads such a ruby's VM counters from its memory instead): they are found,
// counted and dropped the same way, with nothing attached.
//
// Files are opened through the process (procfiles.ts: map_files, or the path
// under its root), uncached: descriptors are closed as binaries go, so a
// daemon meeting processes for weeks holds only what is in use.
import { readdirSync, readlinkSync } from 'node:fs';
import { libraryMatches } from '../../core/linux/process.js';
import { fileKey, mappingKey, openMappedFile, readMaps, type BinaryFile, type Mapping } from '../../core/linux/procfiles.js';
import { ElfFile } from '../../core/elf/elf.js';
import type { BpfLink } from '../../core/bpf/object.js';
import { RbtraceError } from '../../core/errors.js';
import { findRubyBinary } from '../../core/bpf/uprobes.js';
import { hasBpfCookie } from '../../core/bpf/usdt-pids.js';
import { RUBY_PROVIDER, requireRubyProbes } from '../../core/linux/ruby.js';

/** Scans after an exec during which a process that maps no libruby is looked at again (the dynamic linker maps it just after). */
const RECHECKS = 3;
/** Files judged (ruby or not) remembered at most: past it the memory starts again (a host that builds executables all day). */
const REMEMBER_FILES = 4096;

export interface RubyBinary<V = never> {
  key: string;
  file: BinaryFile;
  links: BpfLink[];
  /** Kept without probes: what withoutProbes returned for it. */
  vm?: V;
  /** Processes running it at the last scan. */
  pids: number;
  /** The system's: attached for the whole run. */
  pinned: boolean;
}

export interface RubyDiscoveryOptions<V = never> {
  /** Attach the GC probes to one file (throws if it has none: a ruby built without --enable-dtrace). */
  attach: (file: BinaryFile) => BpfLink[];
  /** Does this file hold a Ruby interpreter with the GC probes (the static-executable case)? */
  hasProbes: (file: BinaryFile) => boolean;
  log: (line: string) => void;
  /**
   * A libruby without the probes: what to keep it for (undefined: not kept,
   * as without this option). Called once per file while processes run it.
   */
  withoutProbes?: (file: BinaryFile) => V | undefined;
  /** Called by close() (the scan timer of watchRubies). */
  onClose?: () => void;
}

interface PidState {
  exe: string;
  checks: number;
  /** Key of its ruby file, once found. */
  binary?: string;
}

export class RubyDiscovery<V = never> {
  private readonly binaries = new Map<string, RubyBinary<V>>();
  private readonly pids = new Map<number, PidState>();
  /** Files that are no ruby, or a ruby without USDT (by key): not opened again. */
  private readonly rejected = new Set<string>();
  /** Executables that proved to be a static ruby with USDT (by key). */
  private readonly staticRubies = new Set<string>();

  constructor(private readonly o: RubyDiscoveryOptions<V>) {}

  /** The system's libruby: attached now, for the whole run. */
  pin(file: BinaryFile): void {
    const key = fileKey(file);
    this.binaries.set(key, { key, file, links: this.o.attach(file), pids: 0, pinned: true });
  }

  /** Every binary attached now. */
  list(): RubyBinary<V>[] {
    return [...this.binaries.values()];
  }

  /** Each process of the last scan running a binary kept, with that binary. */
  *processes(): Generator<[number, RubyBinary<V>]> {
    for (const [pid, st] of this.pids) {
      const b = st.binary === undefined ? undefined : this.binaries.get(st.binary);
      if (b) yield [pid, b];
    }
  }

  /** pid -> the ruby file it runs (of the last scan). */
  binaryOf(pid: number): string | undefined {
    return this.pids.get(pid)?.binary;
  }

  scan(): void {
    const users = new Map<string, number>();
    const live = new Set<number>();
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      live.add(pid);
      let exe: string;
      try {
        exe = readlinkSync(`/proc/${pid}/exe`);
      } catch {
        continue; // a kernel thread, or gone
      }
      let st = this.pids.get(pid);
      if (!st || st.exe !== exe) this.pids.set(pid, (st = { exe, checks: 0 }));
      if (st.binary === undefined && st.checks < RECHECKS) {
        st.checks++;
        st.binary = this.look(pid, exe);
      }
      if (st.binary !== undefined) users.set(st.binary, (users.get(st.binary) ?? 0) + 1);
    }
    for (const pid of this.pids.keys()) if (!live.has(pid)) this.pids.delete(pid);
    for (const b of this.binaries.values()) {
      b.pids = users.get(b.key) ?? 0;
      if (b.pids > 0 || b.pinned) continue;
      for (const l of b.links) l.destroy();
      b.file.close();
      this.binaries.delete(b.key);
      this.o.log(`detached from ${b.file.name} (${b.key}): no process runs it any more`);
    }
    if (this.rejected.size > REMEMBER_FILES) this.rejected.clear();
    if (this.staticRubies.size > REMEMBER_FILES) this.staticRubies.clear();
  }

  /** The key of the ruby file process `pid` runs, attached; undefined if none (yet). */
  private look(pid: number, exe: string): string | undefined {
    let maps: Mapping[];
    try {
      maps = readMaps(pid);
    } catch {
      return undefined; // gone
    }
    const lib = maps.find((m) => libraryMatches(m.path, 'ruby'));
    if (lib) return this.use(pid, lib, false);
    const self = maps.find((m) => m.path === exe.replace(/ \(deleted\)$/, ''));
    return self ? this.use(pid, self, true) : undefined;
  }

  /** Attach to the file of mapping `m` unless done or known to be useless; its key if it is attached. */
  private use(pid: number, m: Mapping, executable: boolean): string | undefined {
    const key = mappingKey(m);
    if (this.binaries.has(key)) return key;
    if (this.rejected.has(key)) return undefined;
    let file: BinaryFile | undefined;
    try {
      file = openMappedFile(pid, m);
      // An executable is opened once (then remembered either way): most are no ruby at all.
      if (executable && !this.staticRubies.has(key)) {
        if (!this.o.hasProbes(file)) throw new Error('no ruby:gc__* USDT probes');
        this.staticRubies.add(key);
      }
      this.binaries.set(key, { key, file, links: this.o.attach(file), pids: 0, pinned: false });
      this.o.log(`attached to ${file.name} (${key}), first run by process ${pid}`);
      return key;
    } catch (err) {
      const vm = !executable && file ? this.o.withoutProbes?.(file) : undefined;
      if (vm !== undefined) {
        this.binaries.set(key, { key, file: file!, links: [], vm, pids: 0, pinned: false });
        this.o.log(`kept ${m.path} (${key}) of process ${pid} without probes (${(err as Error).message})`);
        return key;
      }
      file?.close();
      // A ruby without DTrace probes (ruby-build's default), or unreadable: not tried again while it is in use.
      this.rejected.add(key);
      if (!executable) this.o.log(`not attached to ${m.path} (${key}) of process ${pid}: ${(err as Error).message}`);
      return undefined;
    }
  }

  close(): void {
    this.o.onClose?.();
    for (const b of this.binaries.values()) {
      for (const l of b.links) l.destroy();
      if (!b.pinned) b.file.close(); // the pinned one belongs to procfiles' cache
    }
    this.binaries.clear();
    this.pids.clear();
  }
}

/** For RubyDiscovery.hasProbes: the file's .note.stapsdt has every probe the GC programs need. */
export function hasRubyGcProbes(file: BinaryFile, names: string[], provider: string): boolean {
  try {
    const have = new Set(ElfFile.open(file).sdtNotes().filter((n) => n.provider === provider).map((n) => n.name));
    return names.every((n) => have.has(n));
  } catch {
    return false;
  }
}

/** How often processes are looked at for rubies (a ruby is traced from the first scan after it starts). */
export const RUBY_SCAN_MS = 2000;

/**
 * A source's rubies: the system's libruby from the start, and each other
 * libruby or static ruby as a process running it is found, each attached
 * through `attach`. Without BPF cookies (before 5.15) a shared library's
 * USDT attaches only per process: there, the system's libruby only, and
 * its absence is an error worth trying again (a ruby installed later).
 */
export function watchRubies<V = never>(o: Pick<RubyDiscoveryOptions<V>, 'attach' | 'log' | 'withoutProbes'> & { probes: string[] }): RubyDiscovery<V> {
  let system: BinaryFile | undefined;
  try {
    system = findRubyBinary({});
    requireRubyProbes(system, o.probes);
  } catch (err) {
    // No ruby on the host (a Kubernetes node): the containers' rubies are still found.
    if (!hasBpfCookie()) throw err instanceof RbtraceError ? new RbtraceError(err.message, { hint: err.hint, transient: true }) : err;
    o.log(`no system libruby with USDT (${(err as Error).message}): rubies are attached as processes run them`);
    system = undefined;
  }
  let timer: NodeJS.Timeout | undefined;
  const rubies: RubyDiscovery<V> = new RubyDiscovery<V>({
    attach: (file) => {
      requireRubyProbes(file, o.probes);
      return o.attach(file);
    },
    hasProbes: (file) => hasRubyGcProbes(file, o.probes, RUBY_PROVIDER),
    log: o.log,
    withoutProbes: o.withoutProbes,
    onClose: () => { if (timer) clearInterval(timer); },
  });
  try {
    if (system) rubies.pin(system);
    if (hasBpfCookie()) {
      rubies.scan();
      timer = setInterval(() => {
        try {
          rubies.scan();
        } catch (err) {
          o.log(`looking for rubies failed: ${(err as Error).message}`);
        }
      }, RUBY_SCAN_MS);
    }
  } catch (err) {
    rubies.close();
    throw err;
  }
  return rubies;
}
