// -- CMD puts uprobes and raises USDT semaphores in the command's processes
// only. Attached to the file (pid -1), the kernel writes a breakpoint into
// every process mapping it and raises its semaphores: while
// `mallocstat -- sleep` ran, an unrelated malloc/free loop took 377 times as
// long, an unrelated ruby's allocations 75 times (rubyobjnew). Checked here
// without timing: the bytes the kernel writes, read from each process's
// memory while rbtrace runs (0xcc, int3, at a uprobe on x86_64; the
// semaphore's 16-bit count for USDT). Children forked by the command are
// attached as the fork tracker reports them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { ElfFile } from '../../src/core/elf/elf.js';
import { resolveFunction } from '../../src/core/bpf/uprobes.js';
import { sleep, startRbtrace } from '../helpers.js';
import { addressOf, bytesAt, mappedFile as libOf } from '../process-memory.js';

const x86 = process.arch === 'x64';

const pidOf = (pattern: string) => Number(execFileSync('pgrep', ['-n', '-f', pattern], { encoding: 'utf8' }).trim());

test('mallocstat -- CMD: a breakpoint at malloc in the command and its forked child, none in an unrelated process', { skip: !x86 && 'reads int3 (x86_64)' }, async () => {
  const other = spawn('sleep', ['31.5'], { stdio: 'ignore' });
  // bash forks `sleep 7.75` (not the last command, so not exec'd in place).
  const r = startRbtrace(['mallocstat', '-v', '--', 'bash', '-c', 'sleep 7.75; true']);
  try {
    await r.ready();
    await sleep(300); // the fork, and FOLLOW_POLL_MS
    const libc = libOf(other.pid!, /\/libc\.so\.6$/);
    const off = resolveFunction(libc, 'malloc')[0].offset;
    const at = (pid: number) => bytesAt(pid, addressOf(pid, libc, off), 1)[0];
    const shell = pidOf('^bash -c sleep 7.75');
    const child = pidOf('^sleep 7.75$');
    assert.equal(at(shell), 0xcc, 'the command (bash) has the breakpoint');
    assert.equal(at(child), 0xcc, 'its forked child has it');
    assert.notEqual(at(other.pid!), 0xcc, 'an unrelated process mapping the same libc has none');
  } finally {
    r.signal('SIGINT');
    other.kill();
  }
  const f = await r.finished;
  assert.match(f.stderr, /1 child process\(es\) of the command were probed from when rbtrace saw them.*--all-processes/, 'the late start of the child is said');
});

test('rubyobjnew -- CMD: USDT semaphores raised in the command\'s ruby only', async () => {
  const script = 'sleep 8.25';
  const other = spawn('ruby', ['--disable-gems', '-e', 'sleep 30.5'], { stdio: 'ignore' });
  const r = startRbtrace(['rubyobjnew', '-v', '--', 'ruby', '--disable-gems', '-e', script]);
  try {
    await r.ready();
    await sleep(300);
    const lib = libOf(other.pid!, /libruby/);
    const note = ElfFile.open(lib).sdtNotes().find((n) => n.provider === 'ruby' && n.name === 'string__create')!;
    assert.ok(note.semaphore, 'string__create has a semaphore');
    // The semaphore's link-time address is its file offset plus the data segment's difference: find it through the maps of the same file.
    const elf = ElfFile.open(lib);
    const fileOff = elf.fileOffset(note.semaphore)!;
    const sem = (pid: number) => bytesAt(pid, addressOf(pid, lib, fileOff), 2).readUInt16LE(0);
    const traced = pidOf(`^ruby --disable-gems -e ${script}$`);
    assert.ok(sem(traced) > 0, 'raised in the traced ruby');
    assert.equal(sem(other.pid!), 0, 'not in an unrelated ruby using the same libruby');
  } finally {
    r.signal('SIGINT');
    await r.finished;
    other.kill();
  }
});
