// synqueue's delta walks (src/tools/synqueue/collect.ts): after the first
// walk of every process's open files, the BPF side reports a listener only
// when it is new or its queues, limit, drop counter or owner changed, and
// counts the rest; user space carries those over when the count adds up and
// walks again in full when it does not (a listener closed). Checked here on
// 1,500 listeners of one process (more records than the kernel's seq buffer
// holds: a record that overflows it makes the kernel run the program again on
// the same file, which once lost 26 of 10,000 listeners), against ss, while
// queues fill, listeners close and new ones open.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { startRbtrace, settledLeftovers, sleep } from '../helpers.js';

const N = 1500;
// python3: N listeners (backlog 8) on 127.0.0.1; commands on stdin:
// "fill I K": K connections to listener I, never accepted; "close K": close
// the last K; "open K": K new ones. Prints the ports after each command.
const HOLDER = `
import resource, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
ls, cs = [], []
def new():
    l = socket.socket()
    l.bind(('127.0.0.1', 0))
    l.listen(8)
    ls.append(l)
for _ in range(int(sys.argv[1])):
    new()
def say():
    print(' '.join(str(l.getsockname()[1]) for l in ls), flush=True)
say()
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == 'fill':
        port = ls[int(args[0])].getsockname()[1]
        for _ in range(int(args[1])):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(('127.0.0.1', port))
            cs.append(c)
    elif cmd == 'close':
        for _ in range(int(args[0])):
            ls.pop().close()
    elif cmd == 'open':
        for _ in range(int(args[0])):
            new()
    say()
`;

const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) p.kill('SIGKILL');
});

interface Row { port: number; pid: number | null; accept_queue: number; accept_limit: number; syn_queue: number }
interface Report { time: string; listeners: Row[] }

test(`delta walks over ${N} listeners: every report equals ss while queues fill, listeners close and open`, async () => {
  const holder = spawn('python3', ['-c', HOLDER, String(N)], { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(holder);
  const said: string[] = [];
  let partial = '';
  holder.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    said.push(...parts);
  });
  const command = async (line?: string): Promise<number[]> => {
    const before = said.length;
    if (line) holder.stdin!.write(`${line}\n`);
    while (said.length === before) {
      if (holder.exitCode !== null) throw new Error(`holder exited ${holder.exitCode}`);
      await sleep(20);
    }
    await sleep(200); // handshakes on loopback are done well within this
    return said[said.length - 1].split(' ').map(Number);
  };
  let ports = await command();
  assert.equal(ports.length, N);

  const r = startRbtrace(['synqueue', '--json', '-v', '-i', '0.5']);
  await r.ready(30000);
  // Parsed once each: a report of 1,500 listeners is ~400 KB of JSON.
  const parsed: Report[] = [];
  let consumed = 0;
  const reports = (): Report[] => {
    const end = r.stdout.lastIndexOf('\n') + 1;
    for (const line of r.stdout.slice(consumed, end).split('\n')) {
      const x = line.startsWith('{') ? JSON.parse(line) as Report : undefined;
      if (x && Array.isArray(x.listeners)) parsed.push(x);
    }
    consumed = end;
    return parsed;
  };
  /** The first report made wholly after now (an interval's walk starts after it). */
  const nextReport = async (): Promise<Report> => {
    const since = Date.now();
    let got: Report | undefined;
    await r.waitFor(() => (got = reports().find((x) => Date.parse(x.time) > since + 600)) !== undefined, 10000, 'a report');
    return got!;
  };
  /** The holder's listeners in a report against ss's view of them now (nothing changes between the two). */
  const check = async (step: string): Promise<void> => {
    const report = await nextReport();
    const mine = new Map(report.listeners.filter((l) => l.pid === holder.pid).map((l) => [l.port, l]));
    const ss = new Map<number, [number, number]>();
    for (const line of execFileSync('ss', ['-Hltn', 'src', '127.0.0.1'], { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n')) {
      const [, recvQ, sendQ, local] = line.trim().split(/\s+/);
      ss.set(Number(local.slice(local.lastIndexOf(':') + 1)), [Number(recvQ), Number(sendQ)]);
    }
    assert.equal(mine.size, ports.length, `${step}: ${mine.size} of the holder's ${ports.length} listeners in the report`);
    for (const port of ports) {
      const row = mine.get(port);
      assert.ok(row, `${step}: port ${port} missing`);
      assert.deepEqual([row.accept_queue, row.accept_limit], ss.get(port), `${step}: port ${port} against ss`);
    }
  };

  await check('start');
  ports = await command('fill 0 3');
  await command('fill 700 9'); // a full queue: 8 + 1 wait, the rest retry their SYN
  await check('queues filled');
  ports = await command('close 10');
  await check('10 listeners closed');
  ports = await command('open 4');
  await check('4 new listeners');
  ports = await command('fill 1492 2'); // one of the 4 new ones (1,490 + 4 listeners now)
  await check('a new listener\'s queue');

  r.signal('SIGINT');
  const f = await r.finished;
  assert.equal(f.code, 0, f.stderr);
  const walks = /open-files walks: (\d+) delta \((\d+) of them redone in full\), (\d+) full/.exec(f.stderr);
  assert.ok(walks, f.stderr);
  const [delta, redone, full] = walks.slice(1).map(Number);
  assert.ok(delta >= 8, `most walks are delta walks: ${walks[0]}`);
  assert.ok(redone >= 1, `closing listeners made a delta walk be redone: ${walks[0]}`);
  assert.ok(redone <= 3, `only closing did: ${walks[0]}`);
  assert.equal(full, 1, 'the first walk only');
  holder.stdin!.end();
  assert.deepEqual(await settledLeftovers(['dump_listeners', 'dump_listener_files', 'tpb_kfree_skb', 'tpb_synack', 'tpb_data_ready']), []);
});
