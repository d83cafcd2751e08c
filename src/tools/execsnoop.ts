// execsnoop: trace exec() calls, like bcc's execsnoop, from the ring buffer
// records of src/bpf/execsnoop.bpf.c (an ENTER with the argv, an EXIT with
// the result; paired here by thread).
import { Option, type Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { defineTool } from '../core/tool.js';
import { probePaths, type AttachPath } from '../core/paths.js';
import { parsePositiveInt } from '../core/options.js';
import { UsageError } from '../core/errors.js';
import { syscallPrefix } from '../core/system.js';
import { decodeCString } from '../core/layout.js';
import type { BpfObject } from '../core/object.js';
import { possibleCpus } from '../core/maps.js';
import { errnoName } from '../core/names.js';
import { escapeArg, shellQuote } from '../core/output/format.js';
import { ColumnPrinter, type Column } from '../core/output/table.js';
import { EXECSNOOP } from './figures.js';
import { exec_event_layout as layout, RODATA, ENUMS, DEFINES, OBJECT_FILE } from '../generated/execsnoop.js';

export interface ExecsnoopOptions {
  timestamp?: boolean;   // -t
  time?: boolean;        // -T
  fails?: boolean;       // -x
  uid?: string;          // -u
  printUid?: boolean;    // -U
  name?: string;         // -n
  line?: string;         // -l
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
  filename: string;
  args: string[];
  /** Which arguments were cut at the per-argument limit. */
  args_cut?: number[];
  /** argv had more entries than --max-args. */
  args_truncated?: boolean;
}

interface PendingExec {
  pid: number;
  ts: number;
  filename: string;
  args: string[];
  cut: number[];
  more: boolean;
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
const SCHED_PATH: AttachPath = {
  name: 'sched',
  programs: ['sched_exec'],
  note: 'raw_tp/sched_process_exec: one event per successful exec, no syscall hooks (-x needs a syscall path)',
};

/** Paths that hook the syscalls themselves, and so also see failures (-x). */
export const SYSCALL_PATHS: AttachPath[] = [
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
export function attachPaths(wantFailures: boolean): AttachPath[] {
  return wantFailures ? SYSCALL_PATHS : [SCHED_PATH, ...SYSCALL_PATHS];
}

const utf8 = new TextDecoder();
const F = layout.fields;

/**
 * Split a raw argv area (the sched path) and apply the limits the syscall
 * paths apply in BPF: at most maxArgs arguments of at most ARGSIZE bytes.
 */
export function splitRawArgs(area: Uint8Array, maxArgs: number, areaCut: boolean): { args: string[]; cut: number[]; more: boolean } {
  const args: string[] = [];
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
    args.push(utf8.decode(bytes));
    start = nul + 1;
    if (nul === end) break;
  }
  return { args, cut, more: more || areaCut };
}

/** Decode the argv part of an ENTER record without touching unused bytes. */
function decodeArgs(rec: DataView): { args: string[]; cut: number[] } {
  const count = rec.getUint32(F.args_count.offset, true);
  const args: string[] = [];
  const cut: number[] = [];
  for (let i = 0; i < count; i++) {
    const off = F.args.offset + i * DEFINES.EXECSNOOP_ARGSIZE;
    const len = Math.min(rec.getUint16(F.arg_len.offset + 2 * i, true), DEFINES.EXECSNOOP_ARGSIZE);
    const end = Math.min(off + len, rec.byteLength);
    args.push(utf8.decode(new Uint8Array(rec.buffer, rec.byteOffset + off, Math.max(0, end - off))));
    if (rec.getUint8(F.arg_cut.offset + (i >> 3)) & (1 << (i & 7))) cut.push(i);
  }
  return { args, cut };
}

function resolveUid(text: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  try {
    return Number(execFileSync('id', ['-u', text], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    throw new UsageError(`-u: no such user '${text}'`, 'give a user name or a numeric uid');
  }
}

function compileRegex(flag: string, text?: string): RegExp | undefined {
  if (text === undefined) return undefined;
  try {
    return new RegExp(text);
  } catch (err) {
    throw new UsageError(`${flag}: bad regular expression '${text}': ${(err as Error).message}`);
  }
}

/** The ARGS column: escaped (or quoted) arguments, '...' marking cuts. */
export function formatArgs(rec: Pick<ExecRecord, 'args' | 'args_cut' | 'args_truncated'>, quote: boolean): string {
  const cut = new Set(rec.args_cut ?? []);
  const parts = rec.args.map((a, i) => {
    const shown = quote ? shellQuote(escapeArg(a)) : escapeArg(a);
    return cut.has(i) ? `${shown}...` : shown;
  });
  if (rec.args_truncated) parts.push('...');
  return parts.join(' ');
}

/** One scratch slot per possible CPU (see the scratch map in execsnoop.bpf.c). */
function sizeScratch(obj: BpfObject): void {
  obj.map('scratch').maxEntries = possibleCpus();
}

export default defineTool<ExecsnoopOptions>({
  name: 'execsnoop',
  summary: 'trace exec() calls: new programs, their arguments and results',
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
      .option('-u, --uid <uid>', 'only execs by this user (uid or name)')
      .option('-U, --print-uid', 'UID column')
      .option('-n, --name <regex>', 'only commands whose name (comm) matches')
      .option('-l, --line <regex>', 'only commands with an argument that matches')
      .option('-q, --quote', 'put each argument in double quotes')
      .addOption(new Option('--max-args <n>', `arguments kept per exec (at most ${128})`).default(64).argParser(parsePositiveInt('--max-args', 128)));
  },
  figures: EXECSNOOP,
  probe: () => `${probePaths(OBJECT_FILE, attachPaths(false), sizeScratch)}; with -x: ${probePaths(OBJECT_FILE, attachPaths(true), sizeScratch)}`,
  run(ctx, opts) {
    const uid = opts.uid !== undefined ? resolveUid(opts.uid) : -1;
    const nameRe = compileRegex('-n', opts.name);
    const lineRe = compileRegex('-l', opts.line);
    if (opts.maxArgs > DEFINES.EXECSNOOP_MAX_ARGS) throw new UsageError(`--max-args is at most ${DEFINES.EXECSNOOP_MAX_ARGS}`);

    const loaded = ctx.load({
      object: OBJECT_FILE,
      paths: attachPaths(Boolean(opts.fails)),
      rodataSpec: RODATA,
      rodata: { max_args: opts.maxArgs, targ_uid: uid },
      configure: sizeScratch,
    });

    const columns: Column[] = [];
    if (opts.time) columns.push({ name: 'TIME', width: 8 });
    if (opts.timestamp) columns.push({ name: 'TIME(s)', width: 8 });
    if (opts.printUid) columns.push({ name: 'UID', width: 6 });
    columns.push({ name: 'PCOMM', width: 16 }, { name: 'PID', width: 7 }, { name: 'PPID', width: 7 },
      { name: 'RET', width: opts.fails ? 6 : 3, align: 'right' }, { name: 'ARGS', width: 0 });
    const printer = new ColumnPrinter(columns);
    if (!opts.json) ctx.out.write(printer.header());

    const pending = new Map<number, PendingExec>(); // by thread id
    const session = ctx.session;

    const emit = (r: ExecRecord) => {
      if (r.ret !== 0 && !opts.fails) return;
      if (nameRe && !nameRe.test(r.comm)) return;
      if (lineRe && !r.args.some((a) => lineRe.test(a))) return;
      ctx.report({ execs: [{ comm: r.comm, result: r.errno ?? (r.ret === 0 ? 'ok' : String(r.ret)), count: 1 }] });
      if (opts.json) {
        ctx.out.record(r);
        return;
      }
      const row: (string | number)[] = [];
      if (opts.time) row.push(new Date(session.wallTimeOf(r.ts_ns)).toTimeString().slice(0, 8));
      if (opts.timestamp) row.push(session.secondsSinceStart(r.ts_ns).toFixed(3));
      if (opts.printUid) row.push(r.uid);
      const ret = r.ret === 0 ? '0' : r.errno ?? String(r.ret);
      row.push(escapeArg(r.comm), r.pid, r.ppid, ret, formatArgs(r, Boolean(opts.quote)));
      ctx.out.write(printer.row(row));
    };

    /** The printed record, from an EXIT (or DONE) record and its arguments. */
    const exitRecord = (rec: DataView, enter: PendingExec): ExecRecord => {
      const ret = rec.getInt32(F.retval.offset, true);
      const ts = layout.read(rec, 'ts_ns');
      return {
        time: new Date(session.wallTimeOf(ts)).toISOString(),
        ts_ns: ts,
        pid: rec.getUint32(F.pid.offset, true),
        ppid: rec.getUint32(F.ppid.offset, true),
        uid: rec.getUint32(F.uid.offset, true),
        comm: decodeCString(layout.bytes(rec, 'comm')),
        ret,
        errno: ret < 0 ? errnoName(-ret) : undefined,
        filename: enter.filename,
        args: enter.args,
        args_cut: enter.cut.length ? enter.cut : undefined,
        args_truncated: enter.more || undefined,
      };
    };

    ctx.ringBuffer(loaded.obj, 'events', (rec) => {
      const kind = rec.getUint32(F.kind.offset, true);
      const tid = rec.getUint32(F.tid.offset, true);
      const pid = rec.getUint32(F.pid.offset, true);
      const flags = rec.getUint32(F.flags.offset, true);
      if (kind === ENUMS.EXEC_DONE) {
        const size = rec.getUint32(F.args_size.offset, true);
        const { args, cut, more } = splitRawArgs(layout.bytes(rec, 'args', size), opts.maxArgs, (flags & ENUMS.EXEC_MORE_ARGS) !== 0);
        emit(exitRecord(rec, { pid, ts: 0, filename: decodeCString(layout.bytes(rec, 'filename')), args, cut, more }));
        return;
      }
      if (kind === ENUMS.EXEC_ENTER) {
        const { args, cut } = decodeArgs(rec);
        const more = (flags & ENUMS.EXEC_MORE_ARGS) !== 0;
        const filename = decodeCString(layout.bytes(rec, 'filename'));
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
