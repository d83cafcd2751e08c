// Files an unprivileged user controls must not hang root's rbtrace or make
// it eat memory (issue 11, item 1). The attacks are real: a process run by
// uid 65534 (nobody) maps a copy of libc from a directory nobody owns, then
// replaces that file by a FIFO, a symlink to /dev/zero, or another file.
// rbtrace must trace the library the process really maps (the mapping, not
// the path), or fail with one line, within seconds and with bounded memory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openMapping, readMaps } from '../../src/core/linux/procfiles.js';
import { RBTRACE, buildC, startRbtrace, sleep, settledLeftovers, type Finished } from '../helpers.js';

const NOBODY = 65534;
const OUR_PROGRAMS = ['ms_malloc', 'ms_free', 'ms_return', 'strlat_entry', 'strlat_return'];
/** rbtrace's own peak RSS is ~70-100 MB here; the /dev/zero attack reached 2.4 GB. */
const MAX_RSS_BYTES = 400 * 1024 * 1024;
/** "within a few seconds": generous for a loaded 2-core machine, far below a hang. */
const WATCHDOG_MS = 30000;

// 1000 mallocs and 1000 frees after a byte on stdin (so rbtrace attaches first).
const PROG = `
#include <stdlib.h>
#include <unistd.h>
void *volatile keep;
int main(void) {
  char c;
  if (read(0, &c, 1) != 1) return 1;
  for (int i = 0; i < 1000; i++) { keep = malloc(32 + i); free(keep); }
  return 0;
}
`;

let dir: string;
let prog: string;
let libc: string;

before(() => {
  dir = mkdtempSync('/tmp/rbtrace-hostile-');
  chmodSync(dir, 0o755);
  prog = join(dir, 'victim');
  copyFileSync(buildC(PROG, 'victim'), prog);
  chmodSync(prog, 0o755);
  libc = join(dir, 'u', 'libc.so.6');
  execFileSync('install', ['-d', '-o', String(NOBODY), '-m', '755', join(dir, 'u')]);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Run a shell command as uid 65534. */
function asNobody(script: string): void {
  execFileSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', '/bin/sh', '-c', script], { stdio: 'pipe' });
}

/** The victim, as nobody, with its libc from the directory nobody owns; it waits for a byte on stdin. */
async function startVictim(): Promise<ChildProcess> {
  rmSync(libc, { force: true }); // whatever an earlier case left there
  copyFileSync('/lib/x86_64-linux-gnu/libc.so.6', libc);
  const child = spawn('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups',
    'env', `LD_LIBRARY_PATH=${join(dir, 'u')}`, prog], { stdio: ['pipe', 'ignore', 'ignore'] });
  // setpriv and env exec: the pid is the victim's once its maps show our libc.
  for (let i = 0; i < 200; i++) {
    try {
      if (readFileSync(`/proc/${child.pid}/maps`, 'utf8').includes(libc)) return child;
    } catch {
      // not started yet
    }
    await sleep(20);
  }
  child.kill('SIGKILL');
  throw new Error('victim did not start');
}

/** Run rbtrace with a watchdog, sampling its peak RSS (VmHWM) until it ends. */
async function traced(args: string[], victim?: ChildProcess): Promise<Finished & { peakRss: number }> {
  const r = startRbtrace(args);
  let peak = 0;
  const sample = setInterval(() => {
    try {
      const hwm = /^VmHWM:\s*(\d+) kB/m.exec(readFileSync(`/proc/${r.child.pid}/status`, 'utf8'));
      if (hwm) peak = Math.max(peak, Number(hwm[1]) * 1024);
    } catch {
      // gone
    }
  }, 25);
  const watchdog = setTimeout(() => r.signal('SIGKILL'), WATCHDOG_MS);
  if (victim) {
    const gone = new Promise((resolve) => victim.on('exit', resolve));
    try {
      await r.ready(WATCHDOG_MS);
    } catch {
      // exited early (an error) or hung: the assertions below say which
    }
    victim.stdin!.end('g');
    await gone;
    await sleep(100);
    r.signal('SIGINT'); // -p: rbtrace reports when told to end
  }
  const f = await r.finished;
  clearTimeout(watchdog);
  clearInterval(sample);
  return { ...f, peakRss: peak };
}

function oneLineError(f: Finished, tool: string, pattern: RegExp): void {
  assert.equal(f.code, 1, `exit status (stderr: ${f.stderr})`);
  const lines = f.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, f.stderr);
  assert.match(lines[0], new RegExp(`^rbtrace ${tool}: `));
  assert.match(lines[0], pattern);
}

test('mapped libc replaced by a FIFO: mallocstat -p traces the mapped libc, exact counts, no hang', async () => {
  const victim = await startVictim();
  asNobody(`rm ${libc} && mkfifo ${libc}`);
  const f = await traced(['mallocstat', '--json', '-v', '-p', String(victim.pid)], victim);
  assert.equal(f.code, 0, f.stderr);
  const rec = JSON.parse(f.stdout.trim().split('\n').at(-1)!);
  assert.equal(rec.functions.malloc.count, 1000);
  assert.equal(rec.functions.free.count, 1000);
  assert.match(f.stderr, /in .*\/u\/libc\.so\.6 \(deleted\)/, 'names the mapped, deleted file');
  assert.ok(f.peakRss < MAX_RSS_BYTES, `peak RSS ${f.peakRss}`);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('mapped libc replaced by a symlink to /dev/zero: strlat -p times the mapped malloc, bounded RSS', async () => {
  const victim = await startVictim();
  asNobody(`rm ${libc} && ln -s /dev/zero ${libc}`);
  const f = await traced(['strlat', '--json', '-v', '-p', String(victim.pid), '--lib', 'c', '--func', 'malloc'], victim);
  assert.equal(f.code, 0, f.stderr);
  const rep = JSON.parse(f.stdout.trim().split('\n').at(-1)!);
  assert.equal(rep.count, 1000);
  assert.ok(f.peakRss < MAX_RSS_BYTES, `peak RSS ${f.peakRss}`);
  assert.deepEqual(await settledLeftovers(OUR_PROGRAMS), []);
});

test('without CAP_SYS_ADMIN (no map_files): the path is checked against the mapping, one-line error', async () => {
  // Root without CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE cannot open /proc/PID/map_files: rbtrace falls
  // back to /proc/PID/root/<path>, which must be the mapped device and inode.
  const noAdmin = ['setpriv', '--bounding-set', '-sys_admin,-checkpoint_restore', '--inh-caps', '-sys_admin,-checkpoint_restore', '--'];
  // Replacing the file unlinks the mapped one, which maps then shows as deleted.
  for (const [swap, why] of [
    [`rm ${libc} && mkfifo ${libc}`, /libc\.so\.6 \(deleted\), mapped by process \d+, is deleted, and \/proc\/\d+\/map_files cannot be opened/],
    [`rm ${libc} && ln -s /dev/zero ${libc}`, /libc\.so\.6 \(deleted\), mapped by process \d+, is deleted/],
  ] as const) {
    const victim = await startVictim();
    asNobody(swap);
    const f = await runWrapped(noAdmin, ['mallocstat', '-p', String(victim.pid), '-d', '1']);
    victim.kill('SIGKILL');
    oneLineError(f, 'mallocstat', why);
  }
});

/**
 * A copy of the victim grown to 1 GiB (sparse), with its .symtab (or that
 * table's string table) claiming `claim` bytes: what a hostile library could
 * say to make rbtrace read and parse without end.
 */
function craftedElf(name: string, which: 'symtab' | 'strtab' | 'none', claim = 300 * 1024 * 1024): string {
  const buf = readFileSync(prog);
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    if (buf.readUInt32LE(o + 4) !== 2 /* SHT_SYMTAB */) continue;
    const target = which === 'symtab' ? o : shoff + buf.readUInt32LE(o + 40) * shentsize;
    if (which !== 'none') buf.writeBigUInt64LE(BigInt(claim), target + 32);
  }
  const path = join(dir, name);
  writeFileSync(path, buf);
  execFileSync('truncate', ['-s', '1G', path]); // sparse: no disk used
  return path;
}

test('--lib that is not a regular file, or asks for too much: one-line error at once, bounded RSS', async () => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const zeros = join(dir, 'zeros.so');
  writeFileSync(zeros, '');
  execFileSync('truncate', ['-s', '1G', zeros]);
  for (const tool of ['mallocstat', 'strlat', 'gcstat']) {
    for (const [lib, why] of [
      ['/dev/zero', /--lib \/dev\/zero is a character device, not a regular file/],
      [fifo, /--lib .*fifo is a FIFO, not a regular file/],
      ['/tmp', /--lib \/tmp is a directory, not a regular file/],
      [zeros, /zeros\.so is not an ELF file/],
      [join(dir, 'missing.so'), /--lib: cannot open .*missing\.so: ENOENT/],
    ] as const) {
      const f = await traced([tool, '--lib', lib, ...(tool === 'strlat' ? ['--func', 'x'] : []), '-d', '1']);
      oneLineError(f, tool, why);
      assert.ok(f.peakRss < MAX_RSS_BYTES, `${tool} --lib ${lib}: peak RSS ${f.peakRss}`);
    }
  }
  for (const [file, why] of [
    [craftedElf('many-symbols.so', 'symtab'), /many-symbols\.so has 131072\d\d symbols, more than rbtrace reads \(2000000\)/],
    [craftedElf('huge-strtab.so', 'strtab'), /huge-strtab\.so: its headers, symbol tables and notes are more than rbtrace reads \(256 MiB\)/],
  ] as const) {
    const f = await traced(['strlat', '--lib', file, '--func', 'main', '-d', '1']);
    oneLineError(f, 'strlat', why);
    assert.ok(f.peakRss < MAX_RSS_BYTES, `${file}: peak RSS ${f.peakRss}`);
  }
  // A 1 GiB binary whose tables are small: only the tables are read.
  const f = await traced(['strlat', '--json', '--lib', craftedElf('padded.so', 'none'), '--func', 'main', '-d', '0.5']);
  assert.equal(f.code, 0, f.stderr);
  assert.ok(f.peakRss < MAX_RSS_BYTES, `padded: peak RSS ${f.peakRss}`);
});

/** rbtrace under a wrapper command (setpriv ...), to its end. */
function runWrapped(wrap: string[], args: string[]): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(wrap[0], [...wrap.slice(1), process.execPath, RBTRACE, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const watchdog = setTimeout(() => child.kill('SIGKILL'), WATCHDOG_MS);
    child.on('close', (code, signal) => {
      clearTimeout(watchdog);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('a path that names another inode than the mapping is refused (the check behind the fallback)', () => {
  // What a rename race between reading /proc/PID/maps and opening the path
  // would give: the same path, another file. A range with no map_files entry
  // sends openMapping to the path fallbacks, which must refuse it.
  const mine = readMaps(process.pid).find((m) => /\/libc\.so\.6$/.test(m.path))!;
  assert.ok(mine, 'this process maps libc');
  assert.throws(() => openMapping(process.pid, { ...mine, range: '0-1', inode: mine.inode + 1n }),
    /libc\.so\.6 is not the file the process maps \(replaced since it was mapped\)/);
  assert.equal(String(openMapping(process.pid, mine)), mine.path, 'the real mapping opens');
});
