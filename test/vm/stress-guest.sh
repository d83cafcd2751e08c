#!/usr/bin/env bash
# Inside the test VM: does attaching mallocstat's system-wide uprobes (and the
# realloc family's uretprobes) over and over crash processes that are not
# traced? Bystanders run the whole time: Node processes (worker threads,
# zlib, Buffers, child processes: what a test runner does) and a C program
# (threads in malloc/realloc/free, forks, signals). Meanwhile rbtrace
# mallocstat `-- CMD` (pid -1 probes, BPF filters by pid) and strlat runs
# come and go. Any bystander that dies, any core, any kernel complaint is
# reported.
#
#   test/vm/run.sh --timeout 3000 -- bash test/vm/stress-guest.sh OUTDIR SECONDS
set -uo pipefail
OUT=$1 SECS=$2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 125
mkdir -p "$OUT/cores"
echo "$OUT/cores/core.%e.%p.%s" > /proc/sys/kernel/core_pattern
echo 1 > /proc/sys/kernel/print-fatal-signals
ulimit -c unlimited
dmesg -c > "$OUT/boot.dmesg"
W=$(mktemp -d)

cat > "$W/cby.c" <<'EOF'
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
static volatile sig_atomic_t ticks;
static void on_alarm(int s) { (void)s; ticks++; }
static void *churn(void *arg) {
  unsigned seed = (unsigned)(long)arg;
  void *slot[64] = {0};
  for (;;) {
    int i = rand_r(&seed) % 64;
    size_t n = 1 + rand_r(&seed) % 9000;
    switch (rand_r(&seed) % 4) {
    case 0: free(slot[i]); slot[i] = malloc(n); break;
    case 1: slot[i] = realloc(slot[i], n); break;
    case 2: free(slot[i]); slot[i] = calloc(1, n); break;
    case 3: { void *p = reallocarray(slot[i], n, 2); if (p) slot[i] = p; } break;
    }
    if (slot[i]) memset(slot[i], 1, 8);
    if (rand_r(&seed) % 64 == 0) usleep(2000);
  }
  return 0;
}
int main(void) {
  struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
  sigaction(SIGALRM, &sa, 0);
  struct itimerval it = { { 0, 3000 }, { 0, 3000 } };
  setitimer(ITIMER_REAL, &it, 0);
  for (long t = 0; t < 3; t++) { pthread_t th; pthread_create(&th, 0, churn, (void *)t); }
  for (;;) {
    usleep(200000);
    pid_t p = fork();
    if (p == 0) { void *q = malloc(100); q = realloc(q, 5000); free(q); _exit(0); }
    while (waitpid(-1, 0, WNOHANG) > 0) {}
  }
}
EOF
cc -O1 -pthread -o "$W/cby" "$W/cby.c" || exit 125

cat > "$W/nby.mjs" <<'EOF'
// A Node bystander: the main thread spawns children and parses their output,
// worker threads compress and allocate off the JS heap (libc malloc/realloc).
import { Worker, isMainThread } from 'node:worker_threads';
import { spawn } from 'node:child_process';
import zlib from 'node:zlib';
const nap = new Int32Array(new SharedArrayBuffer(4));
const churn = () => {
  for (;;) {
    Atomics.wait(nap, 0, 0, 5); // leave the guest's 2 CPUs some room
    const b = Buffer.allocUnsafeSlow(1 + Math.floor(Math.random() * 200000));
    b.fill(7);
    zlib.inflateSync(zlib.deflateSync(b.subarray(0, 20000)));
    JSON.parse(JSON.stringify({ a: b.subarray(0, 64).toString('hex') }));
  }
};
if (isMainThread) {
  for (let i = 0; i < 2; i++) new Worker(new URL(import.meta.url));
  // --short: a fresh process for 3 s (its first uprobe hits, the [uprobes]
  // area made while its threads run), then a clean exit
  if (process.argv[2] === '--short') setTimeout(() => process.exit(0), 3000);
  const tick = () => {
    const c = spawn('/bin/echo', ['x'.repeat(Math.floor(Math.random() * 4000))]);
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('close', () => setTimeout(tick, 50));
  };
  tick();
  setInterval(() => Buffer.alloc(1 << 16).toString('base64'), 5);
} else churn();
EOF

declare -A BY=()
"$W/cby" & BY[cby]=$!
node "$W/nby.mjs" & BY[nby1]=$!
node "$W/nby.mjs" & BY[nby2]=$!
# fresh Node processes one after another, each 3 s: any that does not exit 0 is logged
( while :; do node "$W/nby.mjs" --short; rc=$?; [ "$rc" = 0 ] || echo "short-lived node bystander exit $rc at $(cut -d' ' -f1 /proc/uptime)" >> "$OUT/short.log"; done ) &
SHORT=$!
sleep 5

ALLOCS=$W/allocs
printf '#include <stdlib.h>\nint main(int c, char **v) { for (int i = 0; i < atoi(v[1]); i++) { void *volatile p = malloc(16 + i); free(p); } return 0; }\n' > "$W/allocs.c"
cc -O1 -o "$ALLOCS" "$W/allocs.c"

deadline=$(( $(date +%s) + SECS ))
n=0 bad=0
while [ "$(date +%s)" -lt "$deadline" ]; do
  n=$((n + 1))
  start=$(date +%s)
  ./bin/rbtrace mallocstat --json -- "$ALLOCS" 500 > "$W/ms.out" 2> "$W/ms.err"
  rc=$?
  got=$(tail -n1 "$W/ms.out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const f=JSON.parse(s).functions;console.log(f.malloc.count+"/"+f.free.count)}catch{console.log("?")}})')
  [ $((n % 3)) = 0 ] && ./bin/rbtrace mallocstat --json -d 2 > /dev/null 2>> "$W/ms.err"   # all processes
  dead=
  for k in "${!BY[@]}"; do kill -0 "${BY[$k]}" 2>/dev/null || dead+=" $k"; done
  [ -s "$OUT/short.log" ] && [ "$(wc -l < "$OUT/short.log")" != "${short_seen:-0}" ] && { short_seen=$(wc -l < "$OUT/short.log"); dead+=" short-lived"; }
  dm=$(dmesg -c | tee -a "$OUT/stress.dmesg" | grep -a -c -E 'segfault|traps:|fatal signal|uprobe|BUG|WARNING')
  line="round $n: mallocstat exit $rc counts $got, $(( $(date +%s) - start ))s, dead:${dead:- none}, kernel lines $dm"
  echo "$line" >> "$OUT/summary"; echo "stress: $line" >&2
  if [ -n "$dead" ] || [ "$rc" != 0 ] || [ "$dm" != 0 ]; then
    bad=$((bad + 1)); cp "$W/ms.err" "$OUT/ms-$n.err"
    for k in $dead; do [ "$k" = short-lived ] && continue; wait "${BY[$k]}"; echo "bystander $k exit $?" >> "$OUT/summary"; unset "BY[$k]"; done
    [ "${#BY[@]}" = 0 ] && break
  fi
done
kill "$SHORT"
for k in "${!BY[@]}"; do kill "${BY[$k]}"; done
wait
echo "done: $n rounds, $bad with trouble; cores: $(ls "$OUT/cores" | tr '\n' ' ')" >> "$OUT/summary"
sync
[ "$bad" = 0 ]
