#!/usr/bin/env bash
# bench/uprobe: cost per probed call of uprobe + uretprobe, on a tight loop
# calling one function N times: plain, under `rbtrace strlat`, and under the
# equivalent bpftrace one-liner, in one run. Prints ns/call and the probe
# overhead of each tracer (traced - plain), and strlat/bpftrace.
# Usage: bench/uprobe.sh [N]   (default 200000; needs root, cc, bpftrace)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O1 -o "$dir/loop" bench/call-loop.c
prog=$dir/loop

plain=$("$prog" "$N")

# strlat: starts the loop itself once attached (-- CMD); the loop prints its ns/call.
strlat=$(./bin/rbtrace strlat --json --lib "$prog" --func work -- "$prog" "$N" | grep -E "^[0-9.]+$" | tail -1)

# bpftrace: -c runs the command once probes are attached. Same work: per-thread
# start time, log2 histogram of the latency.
bt=$(bpftrace -c "$prog $N" -e "uprobe:$prog:work { @s[tid] = nsecs; }
  uretprobe:$prog:work /@s[tid]/ { @ns = hist(nsecs - @s[tid]); delete(@s[tid]); }" 2>/dev/null | grep -E "^[0-9.]+$" | tail -1)

awk -v p="$plain" -v s="$strlat" -v b="$bt" -v n="$N" 'BEGIN {
  printf "calls per run:        %d\n", n
  printf "plain:                %8.1f ns/call\n", p
  printf "rbtrace strlat:       %8.1f ns/call  (probe cost %.0f ns)\n", s, s - p
  printf "bpftrace one-liner:   %8.1f ns/call  (probe cost %.0f ns)\n", b, b - p
  printf "strlat / bpftrace:    %8.2f  (probe cost ratio %.2f)\n", s / b, (s - p) / (b - p)
}'
