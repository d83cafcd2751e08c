// Helpers for the exporter's end-to-end tests: start it on a free loopback
// port, scrape it, and parse the text format back into values.
import { createServer } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { buildC, sleep, startRbtrace, type Running } from './helpers.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Exporter {
  run: Running;
  port: number;
  url: string;
}

/** Start `rbtrace exporter -v` on a free port; resolves once it listens (probes may still be attaching). */
export async function startExporter(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Exporter> {
  const port = await freePort();
  const run = startRbtrace(['exporter', '-v', '--listen', `127.0.0.1:${port}`, ...args], { env });
  await run.waitFor(() => /listening on/.test(run.stderr), 20000, 'the exporter to listen');
  return { run, port, url: `http://127.0.0.1:${port}` };
}

export async function attached(e: Exporter): Promise<void> {
  await e.run.waitFor(() => /probes attached \(/.test(e.run.stderr), 30000, 'the exporter to attach');
}

/** f() every 200 ms until it gives a value (a scrape showing what is waited for); throws after `ms`. */
export async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

export async function get(url: string, accept?: string): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(url, { headers: accept ? { accept } : {} });
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
}

export type Labels = Record<string, string>;
export interface Series { name: string; labels: Labels; value: number }

/** Parse one label set `{a="x",b="y\\"z"}` (text format escapes: \\ \" \n). */
function parseLabels(text: string): Labels {
  const labels: Labels = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    const name = text.slice(i, eq);
    let j = eq + 2; // past ="
    let value = '';
    while (text[j] !== '"') {
      if (text[j] === '\\') {
        const c = text[j + 1];
        value += c === 'n' ? '\n' : c;
        j += 2;
      } else {
        value += text[j++];
      }
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
  }
  return labels;
}

export function parseMetrics(body: string): Series[] {
  const out: Series[] = [];
  for (const line of body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    out.push({ name: m[1], labels: m[2] ? parseLabels(m[2]) : {}, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

/** The value of the one series with this name and (at least) these labels; undefined when absent. */
export function valueOf(series: Series[], name: string, labels: Labels = {}): number | undefined {
  const hits = series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${hits.length} series`);
  return hits[0]?.value;
}

export async function scrape(e: Exporter): Promise<Series[]> {
  const r = await get(`${e.url}/metrics`);
  if (r.status !== 200) throw new Error(`scrape: ${r.status} ${r.body}`);
  return parseMetrics(r.body);
}

/**
 * Ids of the BPF programs a process holds (prog fds, and the programs of its
 * link fds), from /proc/PID/fdinfo: other people's tools on this machine load
 * programs with the same names, so "nothing left" is checked by id.
 */
export function programIdsOf(pid: number): number[] {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    let info = '';
    try { info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'); } catch { continue; }
    const m = /^prog_id:\s*(\d+)/m.exec(info);
    if (m) ids.add(Number(m[1]));
  }
  return [...ids];
}

/** Of these program ids, the ones still loaded, after the kernel's deferred release (up to timeoutMs). */
export async function stillLoaded(ids: number[], timeoutMs = 3000): Promise<number[]> {
  const start = Date.now();
  for (;;) {
    const loaded = new Set((JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'list'], { encoding: 'utf8', maxBuffer: 1 << 26 })) as { id: number }[]).map((p) => p.id));
    const left = ids.filter((id) => loaded.has(id));
    if (left.length === 0 || Date.now() - start > timeoutMs) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}


/**
 * The known work of the exporter tests, one C program:
 *   calls OK BAD EXECS PATH   OK sysfs(2) calls, BAD failing with EINVAL, EXECS execve(PATH) (ENOEXEC)
 *   listen BACKLOG            listen on 127.0.0.1, print the port, never accept; hold until stdin EOF
 *   connect PORT N            N non-blocking connects, then exit
 */
export function buildWorkload(): string {
  return buildC(String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct sockaddr_in lo(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return a;
}

int main(int argc, char **argv)
{
	if (!strcmp(argv[1], "calls")) {
		/* sysfs(2): a syscall nothing else on the machine makes. */
		int ok = atoi(argv[2]), bad = atoi(argv[3]), execs = atoi(argv[4]);
		for (int i = 0; i < ok; i++) syscall(SYS_sysfs, 3);
		for (int i = 0; i < bad; i++) syscall(SYS_sysfs, 1, "no-such-fs");
		char *args[] = { argv[5], NULL }, *env[] = { NULL };
		for (int i = 0; i < execs; i++) execve(argv[5], args, env); /* ENOEXEC: not a binary */
		return 0;
	}
	if (!strcmp(argv[1], "listen")) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = lo(0);
		socklen_t len = sizeof a;
		if (bind(s, (void *)&a, len) || listen(s, atoi(argv[2]))) { perror("listen"); return 1; }
		getsockname(s, (void *)&a, &len);
		printf("%d\n", ntohs(a.sin_port));
		fflush(stdout);
		char b[64];
		while (read(0, b, sizeof b) > 0) {}
		return 0;
	}
	if (!strcmp(argv[1], "connect")) {
		/* Non-blocking connects, then exit: SYNs the full queue dropped are
		 * never retransmitted, so the overflow count is final. */
		int n = atoi(argv[3]);
		for (int i = 0; i < n; i++) {
			int c = socket(AF_INET, SOCK_STREAM, 0);
			struct sockaddr_in a = lo(atoi(argv[2]));
			fcntl(c, F_SETFL, O_NONBLOCK);
			if (connect(c, (void *)&a, sizeof a) && errno != EINPROGRESS) { perror("connect"); return 1; }
		}
		usleep(200000);
		return 0;
	}
	return 99;
}
`, 'exprog');
}

/** A child's stdout, line by line: each call resolves with the next line. */
export function lineReader(child: ChildProcess): () => Promise<string> {
  const lines: string[] = [];
  const waiting: ((l: string) => void)[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(l);
      else lines.push(l);
    }
  });
  return () => (lines.length ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r)));
}
