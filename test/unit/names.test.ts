// Unit tests of the errno and syscall name tables (generated from uapi headers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errnoName, errnoNumber, syscallName, syscallNumber, hostSyscallArch } from '../../src/core/linux/names.js';

test('errno names', () => {
  assert.equal(errnoName(2), 'ENOENT');
  assert.equal(errnoName(-2), 'ENOENT');
  assert.equal(errnoName(13), 'EACCES');
  assert.equal(errnoName(-13), 'EACCES');
  assert.equal(errnoName(11), 'EAGAIN');
  assert.equal(errnoName(110), 'ETIMEDOUT');
  assert.equal(errnoName(9999), '9999');
  assert.equal(errnoName(-9999), '-9999');
  assert.equal(errnoName(0), '0');
});

test('errno numbers from names', () => {
  assert.equal(errnoNumber('ENOENT'), 2);
  assert.equal(errnoNumber('eacces'), 13);
  assert.equal(errnoNumber('EWOULDBLOCK'), 11);
  assert.equal(errnoNumber('-2'), 2);
  assert.equal(errnoNumber('13'), 13);
  assert.equal(errnoNumber('ENOTHING'), undefined);
});

test('x86_64 syscall names', () => {
  assert.equal(syscallName(0, 'x86_64'), 'read');
  assert.equal(syscallName(59, 'x86_64'), 'execve');
  assert.equal(syscallName(257, 'x86_64'), 'openat');
  assert.equal(syscallName(322, 'x86_64'), 'execveat');
  assert.equal(syscallNumber('openat', 'x86_64'), 257);
  assert.equal(syscallNumber('sys_execve', 'x86_64'), 59);
});

test('arm64 syscall names (generic table)', () => {
  assert.equal(syscallName(56, 'arm64'), 'openat');
  assert.equal(syscallName(221, 'arm64'), 'execve');
  assert.equal(syscallName(63, 'arm64'), 'read');
  assert.equal(syscallName(25, 'arm64'), 'fcntl'); // __NR3264_fcntl alias
  assert.equal(syscallName(79, 'arm64'), 'newfstatat'); // __ARCH_WANT_NEW_STAT
  assert.equal(syscallName(38, 'arm64'), 'renameat'); // __ARCH_WANT_RENAMEAT
  assert.equal(syscallName(84, 'arm64'), 'sync_file_range'); // not the _2 variant
  assert.equal(syscallName(435, 'arm64'), 'clone3');
  assert.equal(syscallName(244, 'arm64'), '[unknown: 244]'); // arch-specific range marker
  assert.equal(syscallNumber('openat', 'arm64'), 56);
  assert.equal(syscallNumber('open', 'arm64'), undefined); // arm64 has no open(2)
});

test('unknown syscall numbers and host arch', () => {
  assert.equal(syscallName(100000, 'x86_64'), '[unknown: 100000]');
  assert.equal(syscallName(-1, 'arm64'), '[unknown: -1]');
  const arch = hostSyscallArch();
  assert.ok(arch === 'x86_64' || arch === 'arm64');
  assert.equal(syscallName(syscallNumber('openat')!), 'openat');
});
