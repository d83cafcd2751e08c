// Shared by bench/rubyobjnew.mjs and bench/rubycalls.mjs: run a Ruby
// workload untraced and under each tracer, best of R rounds (rounds go
// through every case in turn), and print each case's wall time against the
// untraced run and against bpftrace's one-liner on the same probes.
//
// The workload waits for a line on stdin (so the tracer attaches first),
// then runs and prints "wall cpu" (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID)
// of its loop only. Wall time is compared: a uprobe trap's time is not all
// charged to the process's CPU clock.
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const rbtrace = `${root}bin/rbtrace`;
export const libruby = execFileSync('sh', ['-c', "ldd $(command -v ruby) | awk '/libruby/ {print $3}'"], { encoding: 'utf8' }).trim();

/** A Ruby program running `loop` (Ruby code) between the go line and its timing. */
export function workload(prelude, loop) {
  return `${prelude}
$stdin.gets
GC.start
w0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
c0 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
${loop}
c1 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
w1 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
puts "#{w1 - w0} #{c1 - c0}"
`;
}

export async function once(work, argv) {
  const prog = spawn('ruby', ['--disable-gems', '-e', work], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  prog.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const progDone = new Promise((resolve) => prog.on('close', resolve));
  let tr;
  let trDone;
  if (argv) {
    const full = argv(prog.pid);
    tr = spawn(full[0], full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    tr.stdout.setEncoding('utf8').on('data', (d) => (text += d));
    tr.stderr.setEncoding('utf8').on('data', (d) => (text += d));
    trDone = new Promise((resolve) => tr.on('close', resolve));
    const start = Date.now();
    while (!/probes attached, tracing/.test(text)) {
      if (tr.exitCode !== null || Date.now() - start > 30000) {
        prog.kill();
        throw new Error(`${full.join(' ')} did not attach:\n${text}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } else {
    await new Promise((r) => setTimeout(r, 300)); // as long as a tracer would take
  }
  prog.stdin.end('go\n');
  await progDone;
  if (tr) {
    tr.kill('SIGINT');
    await trDone;
  }
  const [wall, cpu] = out.trim().split(' ').map(Number);
  return { wall, cpu };
}

/** rbtrace TOOL -v -p PID ARGS as a case's argv. */
export const rbtraceCase = (tool, args) => (pid) => [process.execPath, rbtrace, tool, '-v', '-p', String(pid), ...args];
/** bpftrace -p PID -e PROGRAM (with a BEGIN line telling it is attached) as a case's argv. */
export const bpftraceCase = (program) => (pid) => [
  'bpftrace', '-p', String(pid), '-e', `${program} BEGIN { printf("probes attached, tracing\\n"); }`];

/** Run `cases` (name -> argv(pid) or null for untraced; one named 'bpftrace') R times each; print per-event costs over `events`. */
export async function compare({ work, cases, rounds, events, noun }) {
  const best = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, argv] of Object.entries(cases)) {
      const t = await once(work, argv);
      if (!best[name] || t.wall < best[name].wall) best[name] = t;
    }
  }
  console.log(`${events} probed ${noun}s, best of ${rounds}`);
  const plain = best.plain;
  const bpft = best.bpftrace;
  for (const [name, t] of Object.entries(best)) {
    const extra = ((t.wall - plain.wall) / events) * 1e9;
    console.log(`${name.padEnd(28)} wall ${t.wall.toFixed(3)} s  cpu ${t.cpu.toFixed(3)} s  x${(t.wall / plain.wall).toFixed(2)} of plain` +
      (name === 'plain' ? '' : `  x${(t.wall / bpft.wall).toFixed(2)} of bpftrace  (+${extra.toFixed(0)} ns per ${noun})`));
  }
}
