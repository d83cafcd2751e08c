#!/usr/bin/env bash
# profile --unwind dwarf vs perf record --call-graph dwarf, one run each on
# the same busy process, same rate: CPU of the profiler (user + sys of its
# process tree), BPF run time per sample (kernel.bpf_stats_enabled), stack
# bytes copied per sample, and the hot/cold shares each reports; and each
# profiler's steady CPU (its process's utime+stime between 2 s after start and
# 1 s before the end, so node's start-up is not counted; rbtrace's BPF time,
# spent in the target's context, added) in % of one core, next to rbtrace's
# idle floor (the same window of a profile with no samples).
# TARGET: c (gcc -O2 -fomit-frame-pointer, a 90/10 split) or ruby (Ruby frames
# walked too: a loop over Array#each, Integer#times and allocations).
# Usage: bench/profile-unwind.sh [HZ] [SECONDS] [c|ruby]   (root; run from the repo)
set -euo pipefail
cd "$(dirname "$0")/.."
HZ=${1:-49}
SECS=${2:-10}
TARGET=${3:-c}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/hot.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
__attribute__((noinline)) double hot(long n) { double s = 0; for (long i = 0; i < n; i++) s += (double)i * 1.0000001 / (i + 1); return s; }
__attribute__((noinline)) double cold(long n) { double s = 0; for (long i = 0; i < n; i++) s += (double)i * 1.0000001 / (i + 1); return s; }
int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 3, t = 0;
  struct timespec a, b;
  int k = 0;
  clock_gettime(CLOCK_MONOTONIC, &a);
  do { t += (k++ % 10 == 0) ? cold(1000000) : hot(1000000); clock_gettime(CLOCK_MONOTONIC, &b); }
  while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < secs);
  printf("%f\n", t);
  return 0;
}
C
gcc -O2 -fomit-frame-pointer -o "$tmp/hot" "$tmp/hot.c"
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats; rm -rf "$tmp"' EXIT

cat > "$tmp/busy.rb" <<'RB'
a = Array.new(2000) { |i| i }
deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + ARGV[0].to_f
while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
  s = 0
  a.each { |x| s += x }
  2000.times { |i| s += i }
  Array.new(400) { |i| [i.to_s, "x" * 40] }
end
RB
if [ "$TARGET" = ruby ]; then
  ruby "$tmp/busy.rb" $((SECS * 3 + 12)) > /dev/null &
else
  "$tmp/hot" $((SECS * 3 + 12)) > /dev/null &
fi
target=$!
sleep 0.5
# utime+stime (clock ticks) of a pid, from /proc/PID/stat.
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz_ticks=$(getconf CLK_TCK)
# Steady CPU of pid $1 over [2 s, SECS-1 s] of its run, in % of a core (and BPF ns of rbstack_sample over the same window).
steady() {
  [ -n "$1" ] || { echo "bench: no profiler pid to measure" >&2; echo "0 0"; return; }
  sleep 2; local t0 b0; t0=$(ticks "$1"); b0=$(bpf_ns)
  sleep $((SECS - 3)); local t1 b1; t1=$(ticks "$1"); b1=$(bpf_ns)
  echo "$(( (t1 - t0) * 100 * 100 / hz_ticks / (SECS - 3) ))e-2 $(( (b1 - b0) / 1000 / (SECS - 3) ))"
}
bpf_ns() { bpftool prog show -j | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).filter(x=>x.name==="rbstack_sample").pop();console.log(p&&p.run_time_ns?p.run_time_ns:0)})'; }
/usr/bin/time -f '%U %S' -o "$tmp/rb.time" node bin/rbtrace profile --unwind dwarf -v -F "$HZ" --json -p "$target" -d "$SECS" > "$tmp/rb.json" 2> "$tmp/rb.err" &
rbpid=$!
sleep 0.2
steady "$(pgrep -P "$rbpid" | head -1)" > "$tmp/rb.steady" &
steadypid=$!
sleep $((SECS - 1))
# The BPF program's own time per run, from the kernel's stats (before it is unloaded).
bpftool prog show -j | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).filter(x=>x.name==="rbstack_sample").pop();console.log(p&&p.run_cnt?`BPF: ${p.run_cnt} runs, ${(p.run_time_ns/p.run_cnt/1000).toFixed(1)} us per run`:"BPF: no stats")})' > "$tmp/bpf.txt"
wait $rbpid
# The same run with frame pointers: start-up and symbolization without the unwinding.
/usr/bin/time -f '%U %S' -o "$tmp/fp.time" node bin/rbtrace profile --unwind fp -F "$HZ" --json -p "$target" -d "$SECS" > /dev/null 2>&1
wait "$steadypid"
# The floor, same window: rbtrace profiling a process that never runs (no
# samples), so what is left is its event loop's own cost (ring-buffer polls,
# loss checks).
sleep $((SECS + 5)) &
idle=$!
node bin/rbtrace profile -F "$HZ" --json -p "$idle" -d "$SECS" > /dev/null 2>&1 &
idlepid=$!
sleep 0.2
steady "$idlepid" > "$tmp/idle.steady"
wait "$idlepid" || true
kill "$idle" 2>/dev/null || true
/usr/bin/time -f '%U %S' -o "$tmp/perf.time" perf record -q -F "$HZ" --call-graph dwarf -o "$tmp/perf.data" -p "$target" -- sleep "$SECS" 2>/dev/null &
perfpid=$!
sleep 0.2
steady "$(pgrep -P "$perfpid" -x perf | head -1)" > "$tmp/perf.steady"
wait "$perfpid" || true
kill "$target" 2>/dev/null || true
node - "$tmp" "$SECS" "$TARGET" <<'JS'
const fs = require('fs');
const [dir, secs, target] = process.argv.slice(2);
const rec = JSON.parse(fs.readFileSync(`${dir}/rb.json`, 'utf8').trim().split('\n').pop());
const leaf = (n) => (100 * rec.stacks.filter((s) => s.frames[0]?.name === n).reduce((a, s) => a + s.count, 0) / rec.samples).toFixed(1);
const err = fs.readFileSync(`${dir}/rb.err`, 'utf8');
const v = /--unwind dwarf: (.*)/.exec(err);
const [ru, rs] = fs.readFileSync(`${dir}/rb.time`, 'utf8').trim().split(/\s+/).map(Number);
const [fu, fs_] = fs.readFileSync(`${dir}/fp.time`, 'utf8').trim().split(/\s+/).map(Number);
console.log(fs.readFileSync(`${dir}/bpf.txt`, 'utf8').trim());
const [pu, ps] = fs.readFileSync(`${dir}/perf.time`, 'utf8').trim().split(/\s+/).map(Number);
const rep = require('child_process').execFileSync('perf', ['report', '-i', `${dir}/perf.data`, '--no-children', '--sort', 'sym', '--stdio', '-g', 'none'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
const share = (n) => ([...rep.matchAll(/^\s+([\d.]+)%\s+\[\.\]\s+(\S+)/gm)].find((m) => m[2] === n)?.[1]);
console.log(`rbtrace --unwind dwarf: ${rec.samples} samples; ${v ? v[1] : ''}`);
console.log(`rbtrace CPU (whole process, incl. start-up): ${(ru + rs).toFixed(2)} s over ${secs} s; --unwind fp: ${(fu + fs_).toFixed(2)} s; perf record: ${(pu + ps).toFixed(2)} s (perf report afterwards not counted)`);
const [rbCpu, rbBpfUs] = fs.readFileSync(`${dir}/rb.steady`, 'utf8').trim().split(/\s+/).map(Number);
const [perfCpu] = fs.readFileSync(`${dir}/perf.steady`, 'utf8').trim().split(/\s+/).map(Number);
const [idleCpu] = fs.readFileSync(`${dir}/idle.steady`, 'utf8').trim().split(/\s+/).map(Number);
console.log(`idle floor, % of one core: rbtrace profile -p of a sleeping process (no samples) ${idleCpu.toFixed(2)} %`);
console.log(`steady CPU, % of one core: rbtrace ${rbCpu.toFixed(2)} % + BPF ${(rbBpfUs / 1e4).toFixed(2)} % = ${(rbCpu + rbBpfUs / 1e4).toFixed(2)} %; perf record ${perfCpu.toFixed(2)} % (its stack copies in the kernel not counted)`);
if (target === 'c') console.log(`hot: rbtrace ${leaf('hot')}%, perf ${share('hot')}%; cold: rbtrace ${leaf('cold')}%, perf ${share('cold')}%`);
JS
