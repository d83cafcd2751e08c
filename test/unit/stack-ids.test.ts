// The ids rbtrace_stack_id returns instead of a stack id: the TS constants
// are the header's (read from rbtrace_stacks.bpf.h, so the two cannot drift),
// and what each pair of sides shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STACK_LOST, STACK_NONE, missingStackFrame } from '../../src/core/stacks/index.js';
import { ROOT } from '../helpers.js';

test('STACK_NONE and STACK_LOST are rbtrace_stacks.bpf.h\'s values; MS_STACK_COPIED is neither', () => {
  const header = readFileSync(join(ROOT, 'src/bpf/include/rbtrace_stacks.bpf.h'), 'utf8');
  const define = (text: string, name: string) => Number(text.match(new RegExp(`#define ${name} \\((-?\\d+)\\)`))?.[1]);
  assert.equal(define(header, 'RBTRACE_STACK_NONE'), STACK_NONE);
  assert.equal(define(header, 'RBTRACE_STACK_LOST'), STACK_LOST);
  const copied = define(readFileSync(join(ROOT, 'src/bpf/mallocstat.h'), 'utf8'), 'MS_STACK_COPIED');
  assert.ok(Number.isInteger(copied) && copied < 0 && copied !== STACK_NONE && copied !== STACK_LOST, String(copied));
});

test('a lost user side is marked even when the kernel side came; an absent one is not', () => {
  assert.equal(missingStackFrame(5, 7), undefined);
  assert.equal(missingStackFrame(STACK_NONE, 7), undefined);          // a kernel thread
  assert.equal(missingStackFrame(STACK_LOST, 7)?.name, '[lost user stack]');
  assert.equal(missingStackFrame(STACK_LOST, STACK_LOST)?.name, '[lost stack]');
  assert.equal(missingStackFrame(STACK_NONE, STACK_NONE, '[user]')?.name, '[user]');
  assert.equal(missingStackFrame(STACK_LOST, STACK_NONE, '[user]')?.name, '[lost stack]');
  assert.equal(missingStackFrame(3, STACK_LOST), undefined);           // user frames shown, count says the rest
});
