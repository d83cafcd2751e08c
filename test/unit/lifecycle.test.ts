// Unit tests of the run's lifecycle helpers: which fds `-- CMD` is handed,
// how a failed write becomes one error line, --user's syntax check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { classifyFds } from '../../src/core/linux/gate.js';
import { Output } from '../../src/core/output/stdout.js';
import { parseUser } from '../../src/core/linux/user.js';
import { UsageError } from '../../src/core/errors.js';

const CLOEXEC = 0o2000000;

test('classifyFds: inherited fds are handed on, Node\'s own are not', () => {
  const snap = classifyFds([
    { fd: 0, target: '/dev/null', flags: CLOEXEC },
    { fd: 1, target: 'pipe:[10]', flags: CLOEXEC | 1 },
    { fd: 3, target: 'anon_inode:[eventpoll]', flags: CLOEXEC | 2 },
    { fd: 4, target: 'pipe:[20]', flags: CLOEXEC }, // Node's wake-up pipe: both ends here
    { fd: 5, target: 'pipe:[20]', flags: CLOEXEC | 1 },
    { fd: 6, target: '/etc/hostname', flags: CLOEXEC }, // inherited, made close-on-exec by Node
    { fd: 7, target: 'pipe:[10]', flags: CLOEXEC | 1 }, // 7>&1: one end of a pipe, twice
    { fd: 8, target: 'socket:[30]', flags: CLOEXEC | 2 },
    { fd: 40, target: '/etc/passwd', flags: 0 }, // not close-on-exec: passes by itself
  ]);
  assert.deepEqual(snap.pass, [6, 7, 8]);
});

/** A stream whose writes fail with `code`. */
function failing(code: string): NodeJS.WriteStream {
  const w = new Writable({
    write(_chunk, _enc, cb) {
      cb(Object.assign(new Error(code), { code }));
    },
  });
  return w as unknown as NodeJS.WriteStream;
}

test('Output: a failed write is one error naming the output; EPIPE is a reader going away', async () => {
  const full = new Output(false, failing('ENOSPC'));
  let failed: Error | undefined;
  full.whenFailed((e) => (failed = e));
  full.line('x');
  await assert.rejects(full.flush(), /^RbtraceError: cannot write to stdout: no space left on device \(ENOSPC\)$/);
  assert.equal(failed?.message, 'cannot write to stdout: no space left on device (ENOSPC)');
  assert.ok(full.isClosed);
  full.line('more'); // ignored, no second error

  const pipe = new Output(false, failing('EPIPE'));
  let closed = false;
  pipe.whenClosed(() => (closed = true));
  pipe.line('x');
  await pipe.flush();
  assert.ok(closed && pipe.isClosed && pipe.error === undefined);
});

test('parseUser: names and uids in range; anything else is a usage error', () => {
  assert.equal(parseUser('nobody'), 'nobody');
  assert.equal(parseUser('65534'), '65534');
  assert.equal(parseUser('0'), '0');
  assert.equal(parseUser('4294967294'), '4294967294');
  for (const bad of ['4294967295', '99999999999', '-1', '', 'a b', 'x\n', '1e3', 'ro;ot']) {
    assert.throws(() => parseUser(bad), UsageError, bad);
  }
});
