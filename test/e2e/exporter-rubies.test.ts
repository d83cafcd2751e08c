// The exporter's gcstat traces every ruby with USDT, not only the one using
// the system's libruby: two rubies run from copies of it, one from a
// directory on the host (LD_LIBRARY_PATH, as an rbenv or ruby-build install
// is) and one from a private tmpfs in its own mount namespace (unshare
// --mount: a container's image, invisible on the host). The exporter must
// find each file, attach once per file, and count each process's GCs:
// rbtrace_ruby_gcs_total of that pid equals its GC.count delta, exactly
// (GC.count is the oracle; each GC has one mark phase). When the rubies end,
// their files are detached and leave the output; the system's stays.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../helpers.js';
import { attached, lineReader, programIdsOf, scrape, startExporter, stillLoaded, until, valueOf, type Exporter, type Series } from '../exporter-helpers.js';

// The system's libruby as a ruby maps it, copied under the name the dynamic linker looks for (its soname).
const [LIBRUBY, SO] = execFileSync('ruby', ['-e',
  'print File.readlines("/proc/self/maps").map { |l| l.split[5] }.compact.find { |p| p.include?("libruby") }, " ", RbConfig::CONFIG["LIBRUBY_SONAME"]'],
{ encoding: 'utf8' }).split(' ');
const GCS = 25;
// Boots, says so, then per line on stdin: GCS x GC.start, and prints its GC.count delta.
const SCRIPT = `STDOUT.sync = true; puts "up"; while STDIN.gets; b = GC.count; ${GCS}.times { GC.start }; puts GC.count - b; end`;

const dir = mkdtempSync('/tmp/rbtrace-exp-rubies-');
chmodSync(dir, 0o755);
const hostLib = join(dir, 'lib');
const box = join(dir, 'box'); // empty on the host; a private tmpfs inside the namespace
mkdirSync(hostLib);
mkdirSync(box);
copyFileSync(LIBRUBY, join(hostLib, SO));

const children: ChildProcess[] = [];
let exp: Exporter | undefined;
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (exp && exp.run.child.exitCode === null) exp.run.signal('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Ruby { child: ChildProcess; next: () => Promise<string> }

/** A ruby whose stdout lines come back one by one. */
function ruby(cmd: string, args: string[]): Ruby {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  return { child, next: lineReader(child) };
}

const mapsOf = (pid: number) => readFileSync(`/proc/${pid}/maps`, 'utf8');
const binarySeries = (s: Series[], path: string) => s.filter((x) => x.name === 'rbtrace_ruby_binary_processes' && x.labels.binary === path);

test('rubies on copies of libruby (a host directory, a private mount namespace): each file attached once, rbtrace_ruby_gcs_total = GC.count delta per pid', async () => {
  exp = await startExporter(['--tools', 'gcstat']);
  await attached(exp);

  const onHost = ruby('env', [`LD_LIBRARY_PATH=${hostLib}`, 'ruby', '--disable-gems', '-e', SCRIPT]);
  const boxed = ruby('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c',
    `mount -t tmpfs tmpfs ${box} && cp ${hostLib}/${SO} ${box}/ && exec env LD_LIBRARY_PATH=${box} ruby --disable-gems -e '${SCRIPT}'`]);
  assert.equal(await onHost.next(), 'up');
  assert.equal(await boxed.next(), 'up');
  assert.ok(mapsOf(onHost.child.pid!).includes(join(hostLib, SO)), 'the host ruby runs the copy');
  assert.ok(mapsOf(boxed.child.pid!).includes(join(box, SO)), 'the boxed ruby runs its own copy');
  assert.throws(() => statSync(join(box, SO)), 'the box is invisible on the host');

  // Both files found and attached (the exporter looks every 2 s), one process each.
  const found = await until('both copies attached', async () => {
    const s = await scrape(exp!);
    const [h, b] = [binarySeries(s, join(hostLib, SO)), binarySeries(s, join(box, SO))];
    return h.length === 1 && b.length === 1 && h[0].value === 1 && b[0].value === 1 ? s : undefined;
  });
  const inodes = found.filter((x) => x.name === 'rbtrace_ruby_binary_processes').map((x) => x.labels.inode);
  assert.equal(new Set(inodes).size, inodes.length, `one series per file: ${inodes}`);
  const systemIno = `:${statSync(LIBRUBY).ino}`;
  const isSystem = (x: Series) => x.name === 'rbtrace_ruby_binary_processes' && x.labels.inode.endsWith(systemIno);
  assert.equal(found.filter(isSystem).length, 1, 'the system libruby is attached too');

  const before = await scrape(exp);
  onHost.child.stdin!.write('go\n');
  boxed.child.stdin!.write('go\n');
  const [dHost, dBox] = [Number(await onHost.next()), Number(await boxed.next())];
  assert.ok(dHost >= GCS && dBox >= GCS, `GC.count deltas ${dHost} ${dBox}`);
  await sleep(250); // past the exporter's 200 ms coalescing
  const afterRun = await scrape(exp);
  for (const [r, d] of [[onHost, dHost], [boxed, dBox]] as const) {
    const lab = { pid: String(r.child.pid) };
    const gcs = (valueOf(afterRun, 'rbtrace_ruby_gcs_total', lab) ?? 0) - (valueOf(before, 'rbtrace_ruby_gcs_total', lab) ?? 0);
    assert.equal(gcs, d, `pid ${r.child.pid}: ${gcs} GCs counted, GC.count says ${d}`);
    assert.ok((valueOf(afterRun, 'rbtrace_ruby_rss_bytes', lab) ?? 0) > 0);
  }

  // The rubies end: their files are detached and leave the output, the system's stays.
  for (const r of [onHost, boxed]) {
    r.child.stdin!.end();
    await new Promise((res) => (r.child.exitCode === null ? r.child.on('exit', res) : res(null)));
  }
  const gone = await until('the copies detached', async () => {
    const s = await scrape(exp!);
    return binarySeries(s, join(hostLib, SO)).length + binarySeries(s, join(box, SO)).length === 0 ? s : undefined;
  });
  assert.equal(gone.filter(isSystem).length, 1, 'the system libruby stays attached');
  assert.match(exp.run.stderr, new RegExp(`detached from ${join(box, SO).replace(/[.]/g, '\\.')}`));
  assert.equal(valueOf(gone, 'rbtrace_ruby_gcs_total', { pid: String(onHost.child.pid) }), undefined, 'an ended ruby leaves the output');

  const ids = programIdsOf(exp.run.child.pid!);
  exp.run.signal('SIGTERM');
  const f = await exp.run.finished;
  assert.equal(f.code, 0, f.stderr);
  assert.deepEqual(await stillLoaded(ids), []);
});
