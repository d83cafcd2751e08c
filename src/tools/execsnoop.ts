// execsnoop: trace exec() calls, like bcc's execsnoop, from the ring buffer
// records of src/bpf/execsnoop.bpf.c (an ENTER with the argv, an EXIT with
// the result; paired here by thread).
import { Option, type Command } from 'commander';
import { defineTool } from '../core/tool.js';
import { probePaths, type AttachPath } from '../core/paths.js';
import { integerParser, uidParser } from '../core/parsers.js';
import { UsageError } from '../core/errors.js';
import { syscallPrefix } from '../core/system.js';
import type { BpfObject } from '../core/object.js';
import { possibleCpus } from '../core/maps.js';
import { errnoName } from '../core/names.js';
import { escapeBytesForTerminal, escapeForTerminal, shellQuote, styled, type Cell } from '../core/output/format.js';
import { bytesText, bytesJson } from '../core/output/json.js';
import { ColumnPrinter, type Column } from '../core/output/table.js';
import { EXECSNOOP } from './common/figures.js';
import { CgroupPaths, cgroupColumns, cgroupFields, containerOf } from '../core/cgroup.js';
import { exec_event_layout as layout, ENUMS, DEFINES, SKELETON } from '../generated/execsnoop.js';

export interface ExecsnoopOptions {
  timestamp?: boolean;   // -t
  time?: boolean;        // -T
  fails?: boolean;       // -x
  uid?: number;          // -u
  printUid?: boolean;    // -U
  name?: RegExp;         // -n
  line?: RegExp;         // -l
  quote?: boolean;       // -q
  maxArgs: number;
}

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
  /** The container that path names, else null (src/core/cgroup.ts). */
  container?: string | null;
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

/** An exec to print: its JSON record, and the bytes the text view escapes. */
interface Exec {
  rec: ExecRecord;
  comm: Uint8Array;
  args: Uint8Array[];
}

function syscallTargets(prefix: string): Record<string, string> {
  return {
    fe_enter_execve: `${prefix}execve`,
    fe_enter_execveat: `${prefix}execveat`,
    fe_exit_execve: `${prefix}execve`,
    fe_exit_execveat: `${prefix}execveat`,
  };
}

/** Successful execs only: one cheap record each. */
const SCHED_PATH: AttachPath<typeof SKELETON> = {
  name: 'sched',
  programs: ['sched_exec'],
  note: 'raw_tp/sched_process_exec: one event per successful exec, no syscall hooks (-x needs a syscall path)',
};

/** Paths that hook the syscalls themselves, and so also see failures (-x). */
export const SYSCALL_PATHS: AttachPath<typeof SKELETON>[] = [
  {
    name: 'fentry',
    programs: ['fe_enter_execve', 'fe_enter_execveat', 'fe_exit_execve', 'fe_exit_execveat'],
    attachTargets: syscallTargets(syscallPrefix()),
    note: 'fentry/fexit on the execve entry points: no syscall tracepoints, so no slow path for other syscalls',
  },
  {
    name: 'kprobe',
    programs: ['kp_enter_execve', 'kp_enter_execveat', 'kp_exit_execve', 'kp_exit_execveat'],
    note: 'kprobes on the execve entry points',
  },
  {
    name: 'tracepoint',
    programs: ['tp_enter_execve', 'tp_enter_execveat', 'tp_exit_execve', 'tp_exit_execveat'],
    note: 'syscalls:sys_{enter,exit}_execve{,at} tracepoints',
  },
];

/** Best first. Without -x the sched path wins; the others stay as fallbacks (and can be forced). */
export function attachPaths(wantFailures: boolean): AttachPath<typeof SKELETON>[] {
  return wantFailures ? SYSCALL_PATHS : [SCHED_PATH, ...SYSCALL_PATHS];
}

const F = layout.fields;

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

/** Decode the argv part of an ENTER record without touching unused bytes. */
function decodeArgs(rec: DataView): { args: Uint8Array[]; cut: number[] } {
  const count = rec.getUint32(F.args_count.offset, true);
  const args: Uint8Array[] = [];
  const cut: number[] = [];
  for (let i = 0; i < count; i++) {
    const off = F.args.offset + i * DEFINES.EXECSNOOP_ARGSIZE;
    const len = Math.min(rec.getUint16(F.arg_len.offset + 2 * i, true), DEFINES.EXECSNOOP_ARGSIZE);
    const end = Math.min(off + len, rec.byteLength);
    args.push(new Uint8Array(rec.buffer, rec.byteOffset + off, Math.max(0, end - off)).slice());
    if (rec.getUint8(F.arg_cut.offset + (i >> 3)) & (1 << (i & 7))) cut.push(i);
  }
  return { args, cut };
}

function regexParser(flag: string) {
  return (text: string): RegExp => {
    try {
      return new RegExp(text);
    } catch (err) {
      throw new UsageError(`${flag}: bad regular expression '${text}': ${(err as Error).message}`);
    }
  };
}

/**
 * The ARGS column: escaped (or quoted) arguments, '...' marking cuts. Raw
 * bytes (as read from the kernel) show bytes that are not UTF-8 as \xNN.
 */
export function formatArgs(rec: { args: (string | Uint8Array)[] } & Pick<ExecRecord, 'args_cut' | 'args_truncated'>, quote: boolean): string {
  const cut = new Set(rec.args_cut ?? []);
  const parts = rec.args.map((a, i) => {
    const text = typeof a === 'string' ? escapeForTerminal(a) : escapeBytesForTerminal(a);
    const shown = quote ? shellQuote(text) : text;
    return cut.has(i) ? `${shown}...` : shown;
  });
  if (rec.args_truncated) parts.push('...');
  return parts.join(' ');
}

/** One scratch slot per possible CPU (see the scratch map in execsnoop.bpf.c). */
function sizeScratch(obj: BpfObject<typeof SKELETON>): void {
  obj.map('scratch').maxEntries = possibleCpus();
}

export default defineTool<ExecsnoopOptions>({
  name: 'execsnoop',
  summary: 'trace exec() calls: new programs, their arguments and results',
  honours: ['pid', 'command', 'duration'],
  whyNot: { interval: 'it prints each exec as it happens' },
  textOnly: ['timestamp', 'time', 'printUid', 'quote'],
  help: `Examples:
  rbtrace execsnoop                  every exec on the system
  rbtrace execsnoop -x -T            with failed ones, and the time of day
  rbtrace execsnoop -n '^python'     commands whose name matches a regex
  rbtrace execsnoop -- make -j2      what a build runs
  rbtrace execsnoop --json | jq .args`,
  options(cmd: Command) {
    cmd
      .option('-t, --timestamp', 'TIME(s) column: seconds since rbtrace started')
      .option('-T, --time', 'TIME column: wall-clock time (HH:MM:SS)')
      .option('-x, --fails', 'include failed exec()s (RET shows the errno name)')
      .addOption(new Option('-u, --uid <uid>', 'only execs by this user (name, or uid 0 to 4294967294)').argParser(uidParser('-u')))
      .option('-U, --print-uid', 'UID column')
      .addOption(new Option('-n, --name <regex>', 'only commands whose name (comm) matches').argParser(regexParser('-n')))
      .addOption(new Option('-l, --line <regex>', 'only commands with an argument that matches').argParser(regexParser('-l')))
      .option('-q, --quote', 'put each argument in double quotes')
      .addOption(new Option('--max-args <n>', `arguments kept per exec (1 to ${DEFINES.EXECSNOOP_MAX_ARGS})`).default(64)
        .argParser(integerParser('--max-args', { min: 1, max: DEFINES.EXECSNOOP_MAX_ARGS, example: String(DEFINES.EXECSNOOP_MAX_ARGS) })));
  },
  probe: () => {
    // The default path decides whether execsnoop runs; -x (failed execs) may need more (syscall hooks).
    const main = probePaths(SKELETON, attachPaths(false), sizeScratch);
    try {
      return `${main}; with -x: ${probePaths(SKELETON, attachPaths(true), sizeScratch)}`;
    } catch (err) {
      return `${main}; -x unavailable: ${(err as Error).message}`;
    }
  },
  kernels: { best: '5.10 sched (-x: fentry)', fallback: '5.10 kprobe, tracepoint' },
  figures: EXECSNOOP,
  run(ctx, opts) {
    const uid = opts.uid ?? -1;
    const nameRe = opts.name;
    const lineRe = opts.line;

    const loaded = ctx.load({
      skeleton: SKELETON,
      paths: attachPaths(Boolean(opts.fails)),
      rodata: { max_args: opts.maxArgs, targ_uid: uid },
      configure: sizeScratch,
    });

    // The cgroup of each exec comes from BPF (its id) and is named here; a
    // CONTAINER column when the host has containers at start (a streamed
    // table fixes its columns before the first exec), CGROUP with --cgroup.
    const cgroups = new CgroupPaths();
    const cgCols = cgroupColumns([], { cgroup: Boolean(ctx.target.cgroup), container: [...cgroups.known()].some((p) => containerOf(p) !== null) });
    const columns: Column[] = [];
    if (opts.time) columns.push({ name: 'TIME', width: 8 });
    if (opts.timestamp) columns.push({ name: 'TIME(s)', width: 8 });
    if (opts.printUid) columns.push({ name: 'UID', width: 6 });
    columns.push({ name: 'PCOMM', width: 16 }, { name: 'PID', width: 7 }, { name: 'PPID', width: 7 },
      { name: 'RET', width: opts.fails ? 6 : 3, align: 'right' }, ...cgCols.headers.map((name) => ({ name, width: name === 'CGROUP' ? 24 : 12 })), { name: 'ARGS', width: 0 });
    const printer = new ColumnPrinter(columns);
    if (!opts.json) ctx.out.write(printer.header());

    const pending = new Map<number, PendingExec>(); // by thread id
    const session = ctx.session;

    const emit = ({ rec: r, comm, args }: Exec) => {
      if (r.ret !== 0 && !opts.fails) return;
      if (nameRe && !nameRe.test(r.comm)) return;
      if (lineRe && !r.args.some((a) => lineRe.test(a))) return;
      ctx.report({ execs: [{ comm: r.comm, result: r.errno ?? (r.ret === 0 ? 'ok' : String(r.ret)), count: 1 }] });
      if (opts.json) {
        ctx.out.record(r);
        return;
      }
      const row: Cell[] = [];
      if (opts.time) row.push(new Date(session.wallTimeOf(r.ts_ns)).toTimeString().slice(0, 8));
      if (opts.timestamp) row.push(session.secondsSinceStart(r.ts_ns).toFixed(3));
      if (opts.printUid) row.push(r.uid);
      const ret = r.ret === 0 ? '0' : r.errno ?? String(r.ret);
      // comm and args as raw bytes: bytes that are not UTF-8 show as \xNN (both escape).
      row.push(styled(escapeBytesForTerminal(comm)), r.pid, r.ppid, ret, ...cgCols.cells(r), styled(formatArgs({ ...r, args }, Boolean(opts.quote))));
      ctx.out.write(printer.row(row));
    };

    /** The printed record, from an EXIT (or DONE) record and its arguments. */
    const exitRecord = (rec: DataView, enter: PendingExec): Exec => {
      const ret = rec.getInt32(F.retval.offset, true);
      const ts = layout.read(rec, 'ts_ns');
      const comm = cString(layout.bytes(rec, 'comm')).slice();
      const commJson = bytesJson(comm);
      const filename = bytesJson(enter.filename);
      const args = enter.args.map(bytesJson);
      return {
        comm,
        args: enter.args,
        rec: {
          time: new Date(session.wallTimeOf(ts)).toISOString(),
          ts_ns: ts,
          pid: rec.getUint32(F.pid.offset, true),
          ppid: rec.getUint32(F.ppid.offset, true),
          uid: rec.getUint32(F.uid.offset, true),
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
          ...cgroupFields(cgroups.pathOf(layout.read(rec, 'cgroup_id'))),
        },
      };
    };

    ctx.ringBuffer(loaded.obj, 'events', (rec) => {
      const kind = rec.getUint32(F.kind.offset, true);
      const tid = rec.getUint32(F.tid.offset, true);
      const pid = rec.getUint32(F.pid.offset, true);
      const flags = rec.getUint32(F.flags.offset, true);
      if (kind === ENUMS.EXEC_DONE) {
        const size = rec.getUint32(F.args_size.offset, true);
        const { args, cut, more } = splitRawArgBytes(layout.bytes(rec, 'args', size), opts.maxArgs, (flags & ENUMS.EXEC_MORE_ARGS) !== 0);
        const interp = flags & ENUMS.EXEC_INTERP ? cString(layout.bytes(rec, 'interp')).slice() : undefined;
        const filename = cString(layout.bytes(rec, 'filename')).slice();
        emit(exitRecord(rec, { pid, ts: 0, filename, args, cut, more, interp, byFd: (flags & ENUMS.EXEC_BY_FD) !== 0 }));
        return;
      }
      if (kind === ENUMS.EXEC_ENTER) {
        const { args, cut } = decodeArgs(rec);
        const more = (flags & ENUMS.EXEC_MORE_ARGS) !== 0;
        const filename = cString(layout.bytes(rec, 'filename')).slice();
        pending.set(tid, { pid, ts: layout.read(rec, 'ts_ns'), filename, args, cut, more });
        if (pending.size > 65536) pending.delete(pending.keys().next().value!); // execs that never returned
        return;
      }
      // EXIT. A successful exec from a non-leader thread returns as the leader (tid == pid).
      let key = tid;
      let enter = pending.get(tid);
      if (!enter && tid === pid) {
        for (const [t, p] of pending) {
          if (p.pid === pid) {
            key = t;
            enter = p;
            break;
          }
        }
      }
      if (!enter) return; // entered before we attached
      pending.delete(key);
      emit(exitRecord(rec, enter));
    });
  },
});
