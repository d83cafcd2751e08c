// syscount's pure parts: the strace -c -w table must reproduce strace's own
// layout byte for byte, and the option parsers must refuse bad names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStraceTable, sortStraceRows } from '../../src/core/output/strace-table.js';
import { parseErrno, parseSyscallList } from '../../src/tools/syscount/index.js';
import { topRows } from '../../src/tools/syscount/views.js';
import { RbtraceError } from '../../src/core/errors.js';

// `strace -c -w -f true` on the development machine (strace 6.1).
const STRACE = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 43.27    0.000499         499         1           execve
 24.61    0.000284          35         8           mmap
  7.11    0.000082          27         3           mprotect
  1.72    0.000020          19         1         1 access
------ ----------- ----------- --------- --------- ----------------
`;

test('formatStraceTable reproduces strace -c -w rows', () => {
  const rows = sortStraceRows([
    { name: 'access', calls: 1, errors: 1, total_ns: 19_900 },
    { name: 'mmap', calls: 8, errors: 0, total_ns: 284_000 },
    { name: 'execve', calls: 1, errors: 0, total_ns: 499_000 },
    { name: 'mprotect', calls: 3, errors: 0, total_ns: 82_000 },
  ]);
  const ours = formatStraceTable(rows).split('\n');
  const theirs = STRACE.split('\n');
  assert.equal(ours[0], theirs[0]);
  assert.equal(ours[1], theirs[1]);
  assert.equal(ours[2].slice(6), theirs[2].slice(6), 'execve row (the % differs: strace had more rows)');
  assert.equal(ours[3].slice(6), theirs[3].slice(6));
  assert.equal(ours[5].slice(6), theirs[5].slice(6), 'errors column');
  assert.match(ours[7], /^100\.00 {4}0\.000885 {10}68 {8}13 {9}1 total$/);
});

test('the name column grows past 16 with long names', () => {
  const t = formatStraceTable([{ name: 'sched_getaffinity', calls: 1, errors: 0, total_ns: 11_000 }]);
  assert.match(t, /^------ ----------- ----------- --------- --------- -{18}$/m);
});

test('parsers refuse unknown names with a usage error', () => {
  assert.deepEqual(parseSyscallList('read, write'), [0, 1]);
  assert.equal(parseErrno('enoent'), 2);
  assert.equal(parseErrno('13'), 13);
  assert.throws(() => parseSyscallList('nosuch'), (e) => e instanceof RbtraceError && e.exitCode === 2);
  assert.throws(() => parseErrno('ENOSUCH'), (e) => e instanceof RbtraceError && e.exitCode === 2);
  assert.throws(() => parseSyscallList(''), RbtraceError);
});

test('topRows sorts by count, or by time with latency', () => {
  const rows = [{ count: 5, total_ns: 10 }, { count: 1, total_ns: 100 }, { count: 3, total_ns: 1 }];
  assert.deepEqual(topRows(rows, false, 2), { shown: [rows[0], rows[2]], omitted: 1 });
  assert.deepEqual(topRows(rows, true, Infinity).shown, [rows[1], rows[0], rows[2]]);
});
