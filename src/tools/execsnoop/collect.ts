// execsnoop's readings: the only code that reads its ring buffer. The
// programs of src/bpf/execsnoop.bpf.c send an ENTER record with the argv and
// an EXIT record with the result (paired here by thread), or on the sched
// path one DONE record per successful exec; each is decoded with the
// generated exec_event_layout into an ExecRecord.
import { RingBuffer } from '../../core/bpf/ringbuf.js';
import type { BpfObject } from '../../core/bpf/object.js';
import { errnoName } from '../../core/linux/names.js';
import { bytesText, bytesJson } from '../../core/output/json.js';
import { CgroupPaths, cgroupFields, containerOf } from '../../core/linux/cgroup.js';
import { exec_event_layout as layout, ENUMS, DEFINES, type ExecEvent, type SKELETON } from '../../generated/execsnoop.js';

/** One exec, as printed. */
export interface ExecRecord {
  time: string;
  ts_ns: number;
  pid: number;
  ppid: number;
  uid: number;
  comm: string;
  ret: number;
  errno?: string;
  /** comm's exact bytes, when they are not valid UTF-8 (comm then has U+FFFD). */
  comm_base64?: string;
  filename: string;
  filename_base64?: string;
  /** Default path: the file was named by a descriptor (fexecve, execveat):
   * filename is the kernel's /dev/fd/N[/PATH] for it. */
  filename_by_fd?: boolean;
  /** Default path: the interpreter the kernel ran (#! script, binfmt_misc);
   * args are then the interpreter's argv, not the argv passed. */
  interpreter?: string;
  args: string[];
  /** Every argument's exact bytes, when one of them is not valid UTF-8. */
  args_base64?: string[];
  /** Which arguments were cut at the per-argument limit. */
  args_cut?: number[];
  /** argv had more entries than --max-args. */
  args_truncated?: boolean;
  /** Its cgroup v2 path at the exec (relative to the v2 mount), when the cgroup still existed to be named. */
  cgroup?: string;
  /** The container that path names, else null (src/core/linux/cgroup.ts). */
  container?: string | null;
}

/** An exec to print: its JSON record, and the bytes the text view escapes. */
export interface Exec {
  rec: ExecRecord;
  comm: Uint8Array;
  args: Uint8Array[];
}

/** Which execs the command shows (-x, -n, -l). */
export interface ExecFilters {
  fails?: boolean;
  name?: RegExp;
  line?: RegExp;
  maxArgs: number;
}

interface PendingExec {
  pid: number;
  ts: number;
  filename: Uint8Array;
  args: Uint8Array[];
  cut: number[];
  more: boolean;
  interp?: Uint8Array;
  byFd?: boolean;
}

/** A C string's bytes, up to its NUL. */
function cString(bytes: Uint8Array): Uint8Array {
  const nul = bytes.indexOf(0);
  return nul < 0 ? bytes : bytes.subarray(0, nul);
}

/** splitRawArgBytes with the arguments as text (U+FFFD for bytes that are not UTF-8). */
export function splitRawArgs(area: Uint8Array, maxArgs: number, areaCut: boolean): { args: string[]; cut: number[]; more: boolean } {
  const r = splitRawArgBytes(area, maxArgs, areaCut);
  return { ...r, args: r.args.map(bytesText) };
}

/**
 * Split a raw argv area (the sched path) and apply the limits the syscall
 * paths apply in BPF: at most maxArgs arguments of at most ARGSIZE bytes.
 */
export function splitRawArgBytes(area: Uint8Array, maxArgs: number, areaCut: boolean): { args: Uint8Array[]; cut: number[]; more: boolean } {
  const args: Uint8Array[] = [];
  const cut: number[] = [];
  let start = 0;
  let more = false;
  // A trailing NUL ends the last argument; an area cut short leaves it open.
  const end = area.length > 0 && area[area.length - 1] === 0 ? area.length - 1 : area.length;
  while (start <= end && area.length > 0) {
    if (args.length === maxArgs) {
      more = true;
      break;
    }
    let nul = area.indexOf(0, start);
    if (nul < 0 || nul > end) nul = end;
    let bytes = area.subarray(start, nul);
    const open = nul === end && areaCut;
    if (bytes.length > DEFINES.EXECSNOOP_ARGSIZE) {
      bytes = bytes.subarray(0, DEFINES.EXECSNOOP_ARGSIZE);
      cut.push(args.length);
    } else if (open) {
      cut.push(args.length);
    }
    args.push(bytes.slice());
    start = nul + 1;
    if (nul === end) break;
  }
  return { args, cut, more: more || areaCut };
}

/** The argv of an ENTER record: args_count slots of ARGSIZE bytes, each arg_len long, cut when its arg_cut bit is set. */
function enterArgs(rec: DataView, e: ExecEvent): { args: Uint8Array[]; cut: number[] } {
  const area = layout.bytes(rec, 'args');
  const args: Uint8Array[] = [];
  const cut: number[] = [];
  for (let i = 0; i < e.args_count; i++) {
    const start = i * DEFINES.EXECSNOOP_ARGSIZE;
    const len = Math.min(e.arg_len[i], DEFINES.EXECSNOOP_ARGSIZE);
    args.push(area.subarray(start, start + len).slice());
    if (e.arg_cut[i >> 3] & (1 << (i & 7))) cut.push(i);
  }
  return { args, cut };
}

/** Execs that entered and never returned are forgotten past this many. */
const MAX_PENDING = 65536;

/**
 * The command's reading of the ring buffer: each record in, each exec the
 * filters keep out (when its EXIT or DONE record arrives).
 */
export class ExecCollector {
  private readonly pending = new Map<number, PendingExec>(); // by thread id
  /** The cgroup of each exec comes from BPF (its id) and is named here. */
  private readonly cgroups = new CgroupPaths();

  constructor(private readonly filters: ExecFilters, private readonly clock: { wallTimeOf(monoNs: number): number }) {}

  /** Whether the host had containers at start (a CONTAINER column). */
  hostHasContainers(): boolean {
    return [...this.cgroups.known()].some((p) => containerOf(p) !== null);
  }

  /** One ring-buffer record: the exec it completes, if the filters keep it. */
  record(rec: DataView): Exec | undefined {
    const exec = this.pair(rec, layout.decode(rec));
    return exec && this.wanted(exec.rec) ? exec : undefined;
  }

  private wanted(r: ExecRecord): boolean {
    const { fails, name, line } = this.filters;
    if (r.ret !== 0 && !fails) return false;
    if (name && !name.test(r.comm)) return false;
    if (line && !r.args.some((a) => line.test(a))) return false;
    return true;
  }

  private pair(rec: DataView, e: ExecEvent): Exec | undefined {
    const { tid, pid, flags } = e;
    if (e.kind === ENUMS.EXEC_DONE) {
      const { args, cut, more } = splitRawArgBytes(layout.bytes(rec, 'args', e.args_size), this.filters.maxArgs, (flags & ENUMS.EXEC_MORE_ARGS) !== 0);
      const interp = flags & ENUMS.EXEC_INTERP ? cString(layout.bytes(rec, 'interp')).slice() : undefined;
      const filename = cString(layout.bytes(rec, 'filename')).slice();
      return this.exitRecord(rec, e, { pid, ts: 0, filename, args, cut, more, interp, byFd: (flags & ENUMS.EXEC_BY_FD) !== 0 });
    }
    if (e.kind === ENUMS.EXEC_ENTER) {
      const { args, cut } = enterArgs(rec, e);
      const more = (flags & ENUMS.EXEC_MORE_ARGS) !== 0;
      const filename = cString(layout.bytes(rec, 'filename')).slice();
      this.pending.set(tid, { pid, ts: e.ts_ns, filename, args, cut, more });
      if (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
      return undefined;
    }
    // EXIT. A successful exec from a non-leader thread returns as the leader (tid == pid).
    let key = tid;
    let enter = this.pending.get(tid);
    if (!enter && tid === pid) {
      for (const [t, p] of this.pending) {
        if (p.pid === pid) {
          key = t;
          enter = p;
          break;
        }
      }
    }
    if (!enter) return undefined; // entered before we attached
    this.pending.delete(key);
    return this.exitRecord(rec, e, enter);
  }

  /** The printed record, from an EXIT (or DONE) record and its arguments. */
  private exitRecord(rec: DataView, e: ExecEvent, enter: PendingExec): Exec {
    const ret = e.retval;
    const ts = e.ts_ns;
    const comm = cString(layout.bytes(rec, 'comm')).slice();
    const commJson = bytesJson(comm);
    const filename = bytesJson(enter.filename);
    const args = enter.args.map(bytesJson);
    return {
      comm,
      args: enter.args,
      rec: {
        time: new Date(this.clock.wallTimeOf(ts)).toISOString(),
        ts_ns: ts,
        pid: e.pid,
        ppid: e.ppid,
        uid: e.uid,
        comm: commJson.text,
        comm_base64: commJson.base64,
        ret,
        errno: ret < 0 ? errnoName(-ret) : undefined,
        filename: filename.text,
        filename_base64: filename.base64,
        filename_by_fd: enter.byFd || undefined,
        interpreter: enter.interp ? bytesText(enter.interp) : undefined,
        args: args.map((a) => a.text),
        // All or none: a consumer decodes one array, not a mix.
        args_base64: args.some((a) => a.base64 !== undefined) ? enter.args.map((a) => Buffer.from(a).toString('base64')) : undefined,
        args_cut: enter.cut.length ? enter.cut : undefined,
        args_truncated: enter.more || undefined,
        ...cgroupFields(this.cgroups.pathOf(e.cgroup_id)),
      },
    };
  }
}

/** The result label of an exec: ok, or the errno's name. */
export function execResult(retval: number): string {
  return retval === 0 ? 'ok' : errnoName(-retval);
}

/**
 * The exporter's reading: execs completed since load, by result, from the
 * EXIT records of the exit-only paths (probe.ts resultsLoadSpec).
 */
export class ExecResults {
  readonly counts = new Map<string, number>();
  private readonly rb: RingBuffer;

  constructor(obj: BpfObject<typeof SKELETON>, pollMs: number) {
    this.rb = new RingBuffer(obj.map('events'), (rec) => {
      if (layout.read(rec, 'kind') !== ENUMS.EXEC_EXIT) return;
      const result = execResult(layout.read(rec, 'retval'));
      this.counts.set(result, (this.counts.get(result) ?? 0) + 1);
    });
    this.rb.start(pollMs);
  }

  /** Take in what the ring buffer holds now. */
  consume(): Map<string, number> {
    this.rb.consume();
    return this.counts;
  }

  close(): void {
    this.rb.close();
  }
}
