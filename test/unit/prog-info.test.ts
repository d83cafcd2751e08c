// struct bpf_prog_info as src/core/ffi/libbpf.ts reads it (recursion_misses:
// the runs the kernel skipped), checked against the system's uapi header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { BPF_PROG_INFO } from '../../src/core/ffi/libbpf.js';
import { buildC } from '../helpers.js';

test('bpf_prog_info: size and recursion_misses offset equal <linux/bpf.h>', () => {
  const bin = buildC(String.raw`
#include <linux/bpf.h>
#include <stddef.h>
#include <stdio.h>
int main(void) {
  printf("%zu %zu\n", sizeof(struct bpf_prog_info), offsetof(struct bpf_prog_info, recursion_misses));
  return 0;
}`, 'prog-info');
  const [size, offset] = execFileSync(bin, { encoding: 'utf8' }).trim().split(' ').map(Number);
  assert.equal(BPF_PROG_INFO.recursionMisses, offset);
  // The kernel takes a longer struct than it knows if the tail is zero, and
  // a shorter one as far as it goes: the header's size is what is asked for.
  assert.equal(BPF_PROG_INFO.size, size);
});
