// One exact synqueue check, shared by the host's refusal test
// (test/e2e/degrade.test.ts) and the kernel matrix (test/vm/guest): a
// backlog-4 listener that never accepts, 10 loopback connects. Whatever the
// attach path and whatever optional programs it runs without, the report
// must hold 5 of 4 in the accept queue (sk_acceptq_is_full() is backlog >
// limit), name the owner and namespace as /proc tells them, and count the
// other 5 as refused.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { buildC, sleep, startRbtrace, type Finished } from '../helpers.js';

const SQPROG = buildC(`
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
/* sqvm N: listen (backlog 4) on 127.0.0.1, print the port, on "g" from stdin
 * make N non-blocking connects to it, print "done", hold everything until stdin EOF. */
int main(int argc, char **argv) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  socklen_t len = sizeof a;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (bind(s, (void *)&a, len) || listen(s, 4) || getsockname(s, (void *)&a, &len)) { perror("listen"); return 1; }
  printf("%d\\n", ntohs(a.sin_port)); fflush(stdout);
  char b[8];
  if (read(0, b, 1) != 1) return 1; /* go */
  for (int i = 0; i < atoi(argv[1]); i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(c, F_SETFL, O_NONBLOCK);
    if (connect(c, (void *)&a, sizeof a) && errno != EINPROGRESS) { perror("connect"); return 1; }
  }
  printf("done\\n"); fflush(stdout);
  while (read(0, b, sizeof b) > 0) {}
  return 0;
}`, 'sqvm');

const jsonLines = (s: string) => s.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

export interface BacklogCheck {
  /** Forced attach path. */
  path: string;
  /** Whether this path sees each enqueue here (fentry, kprobe, or sock:sk_data_ready attached). */
  seesEnqueues: boolean;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs synqueue -v on the check's path; returns its run (stderr says what it ran without). */
export async function synqueueBacklogCheck(c: BacklogCheck): Promise<Finished> {
  const load = spawn(SQPROG, ['10'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  load.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  try {
    while (!out.includes('\n')) await sleep(20);
    const port = Number(out.split('\n')[0]);
    const r = startRbtrace(['synqueue', '--json', '-v', '--attach', c.path, '-i', '1', '-d', '4', '--port', String(port)], { env: c.env });
    await r.ready(c.timeoutMs ?? 20000);
    load.stdin!.write('g');
    while (!out.includes('done')) await sleep(20);
    const f = await r.finished;
    assert.equal(f.code, 0, `synqueue: exit ${f.code}\n${f.stderr}`);
    const rows = jsonLines(f.stdout).flatMap((x) => (x.listeners ?? []).filter((l: { port: number }) => l.port === port));
    assert.ok(rows.length >= 2, f.stdout);
    assert.equal(rows.at(-1).accept_queue, 5);
    assert.equal(rows.at(-1).accept_limit, 4);
    assert.equal(rows.at(-1).pid, load.pid);
    assert.equal(rows.at(-1).comm, 'sqvm');
    assert.equal(rows.at(-1).netns, statSync('/proc/self/ns/net').ino);
    const enq = rows.reduce((a: number, x: { enqueued: number | null }) => a + (x.enqueued ?? 0), 0);
    if (c.seesEnqueues) {
      assert.equal(enq, 5, 'each connection that joined the accept queue, seen once');
      assert.equal(Math.max(...rows.map((x: { accept_queue_max: number }) => x.accept_queue_max)), 5);
    } else {
      assert.ok(rows.every((x: { enqueued: number | null }) => x.enqueued === null), 'no enqueue probe: enqueues unknown, not 0');
    }
    // The 6th connection on is refused: at its SYN (an overflow) or, when
    // its SYN came before the queue filled, at its final ACK (a listen
    // drop; an overflow only where kfree_skb has reasons, 6.4+).
    const refused = rows.reduce((a: number, x: { overflows: number; drops: number }) => a + x.overflows + x.drops, 0);
    assert.ok(refused >= 5, `5 connections refused (overflows + drops): ${refused}\n${f.stdout}`);
    return f;
  } finally {
    load.stdin!.end();
  }
}
